"""Keeps the control plane out of the agent process at run time.

Compute hosts hold no database credentials, so the agent must work without Django and `cloud`.
Our own code never imports them (a test scans it), but celery and kombu import Django's helpers
opportunistically whenever Django happens to be installed (kombu.utils.json, celery's
utils.collections). On a host that also runs the control plane, that would load Django into the
agent. The agent's entry point therefore installs an import guard before celery is first imported,
which makes those optional imports see "not installed", as they would on a dedicated compute host.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import ModuleType

FORBIDDEN_PACKAGES = ("django", "cloud")


def _is_forbidden(name: str) -> bool:
    return name.split(".", 1)[0] in FORBIDDEN_PACKAGES


def loaded_forbidden_modules() -> list[str]:
    return sorted(name for name in sys.modules if _is_forbidden(name))


class _ForbidControlPlane(importlib.abc.MetaPathFinder):
    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if _is_forbidden(fullname):
            raise ModuleNotFoundError(
                f"the compute agent must not import {fullname!r}", name=fullname
            )
        return None


def forbid_control_plane_imports() -> None:
    """Make any later import of Django or `cloud` in this process fail.

    Refuses (RuntimeError) if one is already loaded: the guard could no longer keep its promise,
    and an agent that silently carried Django along is what it exists to prevent.
    """
    if any(isinstance(finder, _ForbidControlPlane) for finder in sys.meta_path):
        return
    loaded = loaded_forbidden_modules()
    if loaded:
        raise RuntimeError(f"control plane modules already imported: {', '.join(loaded[:5])}")
    sys.meta_path.insert(0, _ForbidControlPlane())


_METRICS_SDK = "opentelemetry.sdk.metrics"

# Modules of Celery and kombu that import a package merely because it is installed, for a feature no
# Kumo process uses, and the packages kept out of them (bench/README.md, "Memory": ~2 MiB in every
# agent, scheduler, conductor and web worker together):
# - kombu registers YAML and msgpack serializers when it can; every Kumo app accepts JSON only
#   (accept_content), so a message in either is refused whether they are loaded or not;
# - Celery's command-line base colours `celery inspect`/`call` output with pygments at a terminal;
# - celery.utils.debug reads the process's memory through psutil for the `memdump` remote command
#   (remote control is off in the agents, and nothing in Kumo calls it); without psutil it answers
#   "psutil not installed" instead.
CELERY_OPTIONAL = {
    "kombu.serialization": ("yaml", "msgpack"),
    "celery.bin.base": ("pygments",),
    "celery.utils.debug": ("psutil",),
}


@contextmanager
def absent(*names: str) -> Iterator[None]:
    """Within the block, importing any of `names` raises ImportError, as if not installed. A package
    already imported is left as it is; the others stay importable after the block."""
    added = [name for name in names if name not in sys.modules]
    for name in added:
        sys.modules[name] = None  # type: ignore[assignment]  # import's own "not here" marker
    try:
        yield
    finally:
        for name in added:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]


def import_celery_lean() -> None:
    """Import the modules of CELERY_OPTIONAL with their optional packages looking absent, so they
    take the branch they take where those are not installed. Call before anything imports celery
    or kombu (a module imported already keeps what it loaded)."""
    for module, optional in CELERY_OPTIONAL.items():
        with absent(*optional):
            importlib.import_module(module)


def import_redis_lean() -> None:
    """Import redis-py (the broker's client) with OpenTelemetry's metrics SDK looking absent.

    redis-py 7 imports that SDK, if installed, for client metrics that stay off unless an
    application turns them on (the agent does not): ~3 MiB in every agent (bench/README.md,
    "Memory"). The control plane does the same in cloud/optional_imports.py. The SDK stays
    importable afterwards; an agent whose broker is RabbitMQ may have no redis at all."""
    with absent(_METRICS_SDK):
        try:
            import redis  # noqa: F401
        except ImportError:
            pass
