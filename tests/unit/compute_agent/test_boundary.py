"""The agent's boundary, enforced two ways: no source file under compute_agent/ imports Django or
`cloud` (and only the libvirt driver imports libvirt), and a fresh interpreter that loads the agent
ends up with none of them in sys.modules, even with DJANGO_SETTINGS_MODULE set."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
AGENT = REPO_ROOT / "compute_agent"
# The same rule as the import-linter contract "Only the agent's libvirt driver imports libvirt":
# any module of the driver package, and no other.
LIBVIRT_PACKAGE = AGENT / "drivers" / "libvirt"
LIBVIRT_ALLOWED = set(LIBVIRT_PACKAGE.rglob("*.py"))
FORBIDDEN = {"django", "cloud"}


def imported_modules(tree: ast.AST) -> set[str]:
    """Absolute module names a file imports, including importlib/__import__ with a literal."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            first = node.args[0]
            if called in ("import_module", "__import__") and isinstance(first, ast.Constant):
                names.add(str(first.value))
    return names


def agent_sources() -> list[Path]:
    sources = sorted(AGENT.rglob("*.py"))
    assert len(sources) > 5, "the scan found too few files to be looking in the right place"
    return sources


def test_no_agent_module_imports_django_or_cloud() -> None:
    offenders = {
        str(path.relative_to(REPO_ROOT)): sorted(
            name for name in imported_modules(ast.parse(path.read_text(), str(path)))
            if name.split(".")[0] in FORBIDDEN
        )
        for path in agent_sources()
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_only_the_libvirt_driver_imports_libvirt() -> None:
    importers = {
        path
        for path in agent_sources()
        if any(
            name.split(".")[0] == "libvirt"
            for name in imported_modules(ast.parse(path.read_text(), str(path)))
        )
    }
    stray = {str(path.relative_to(REPO_ROOT)) for path in importers - LIBVIRT_ALLOWED}
    assert stray == set()
    assert importers, "the driver imports libvirt, so the scan must see at least that"


def test_the_scan_catches_the_import_forms_it_claims_to() -> None:
    code = textwrap.dedent(
        """
        import django.db
        from cloud.compute import models
        import importlib
        importlib.import_module("cloud.rpc")
        __import__("django")
        from . import messages
        """
    )
    assert imported_modules(ast.parse(code)) == {
        "django.db", "cloud.compute", "importlib", "cloud.rpc", "django"
    }


def run_fresh_python(code: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    # The hostile case: a host where the control plane's settings are in the environment.
    env["DJANGO_SETTINGS_MODULE"] = "cloud.settings"
    env["PYTHONPATH"] = str(REPO_ROOT)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        check=False,  # the caller reads the exit status and output itself
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


CONTROL_PLANE_LOADED = (
    "[m for m in sys.modules if m == 'django' or m.startswith('django.') "
    "or m == 'cloud' or m.startswith('cloud.')]"
)


def assert_ran_clean(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stdout + result.stderr


def test_importing_the_agent_loads_no_control_plane_module() -> None:
    assert_ran_clean(
        run_fresh_python(
            f"""
            import compute_agent.worker, compute_agent.manager, compute_agent.__main__
            import compute_agent.domain_xml, compute_agent.reporter, compute_agent.messages
            import compute_agent.drivers.libvirt
            import sys
            loaded = {CONTROL_PLANE_LOADED}
            assert not loaded, loaded
            """
        )
    )


def test_starting_the_agent_loads_no_control_plane_module() -> None:
    """The real start-up path up to the point where the worker would consume: the import guard,
    then the Celery app (celery and kombu opportunistically import Django when it is installed,
    which the guard turns away), the libvirt driver, the manager and the tasks."""
    assert_ran_clean(
        run_fresh_python(
            f"""
            import sys, tempfile
            from compute_agent.boundary import forbid_control_plane_imports
            forbid_control_plane_imports()
            from compute_agent import messages
            from compute_agent.worker import build_agent, parse_args
            config = parse_args(
                ["--host", "boundary", "--instances-dir", tempfile.gettempdir()], environ={{}}
            )
            agent = build_agent(config)
            assert messages.TASK_SPAWN in agent.app.tasks
            import celery.bin.celery, celery.apps.worker, celery.concurrency.thread
            import kombu.utils.json
            assert kombu.utils.json.dumps({{"a": 1}}) == '{{"a": 1}}'
            loaded = {CONTROL_PLANE_LOADED}
            assert not loaded, loaded
            try:
                import django
            except ModuleNotFoundError:
                pass
            else:
                raise AssertionError("the guard let django in")
            """
        )
    )


def test_the_agent_refuses_to_start_in_a_process_that_already_has_django() -> None:
    result = run_fresh_python(
        """
        import django
        from compute_agent.boundary import forbid_control_plane_imports
        forbid_control_plane_imports()
        """
    )
    if "No module named 'django'" in result.stderr:
        pytest.skip("Django is not installed here, so there is nothing to refuse")
    assert result.returncode != 0
    assert "control plane modules already imported" in result.stderr


def test_only_the_driver_and_the_worker_load_libvirt() -> None:
    assert_ran_clean(
        run_fresh_python(
            """
            import sys
            import compute_agent.manager, compute_agent.domain_xml, compute_agent.reporter
            import compute_agent.drivers.base, compute_agent.logcontext, compute_agent.boundary
            assert "libvirt" not in sys.modules
            """
        )
    )
