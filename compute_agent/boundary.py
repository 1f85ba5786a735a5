"""Keeps the control plane out of the agent process at run time.

Compute hosts hold no database credentials, so the agent must work without Django and `cloud`.
Our own code never imports them (a test scans it), but celery and kombu import Django's helpers
opportunistically whenever Django happens to be installed (kombu.utils.json, celery's
utils.collections). On a host that also runs the control plane, that would load Django into the
agent. The agent's entry point therefore installs an import guard before celery is first imported,
which makes those optional imports see "not installed", as they would on a dedicated compute host.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
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


def import_redis_lean() -> None:
    """Import redis-py (the broker's client) with OpenTelemetry's metrics SDK looking absent.

    redis-py 7 imports that SDK, if installed, for client metrics that stay off unless an
    application turns them on (the agent does not): ~3 MiB in every agent (bench/README.md,
    "Memory"). The control plane does the same in cloud/optional_imports.py. The SDK stays
    importable afterwards; an agent whose broker is RabbitMQ may have no redis at all."""
    added = _METRICS_SDK not in sys.modules
    if added:
        sys.modules[_METRICS_SDK] = None  # type: ignore[assignment]  # import's "not here" marker
    try:
        import redis  # noqa: F401
    except ImportError:
        pass
    finally:
        if added and _METRICS_SDK in sys.modules and sys.modules[_METRICS_SDK] is None:
            del sys.modules[_METRICS_SDK]
