"""The layers of docs/architecture.md hold: import-linter's contracts in .importlinter (imports run
wiring → edges → orchestration → domain → kernel, the agent never imports Django or `cloud`, the
control plane knows the agent only through its message contract, only the libvirt driver imports
libvirt), and scripts/import_edges.py, which reads the same layers from source, finds no upward
import and no import cycle."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_every_import_linter_contract_is_kept():
    lint_imports = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    if not Path(lint_imports).exists():
        pytest.fail("lint-imports is missing: install requirements-test.txt (make test does)")
    result = subprocess.run(
        [lint_imports, "--no-cache"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BROKEN" not in result.stdout and " KEPT" in result.stdout


def test_no_module_imports_upward_and_no_modules_import_each_other():
    result = subprocess.run(
        [sys.executable, "scripts/import_edges.py"], cwd=REPO_ROOT, capture_output=True, text=True,
        timeout=60, check=False,
    )
    summary = result.stdout.strip().splitlines()[-1]
    assert result.returncode == 0, result.stdout
    assert summary.startswith("0 upward import edges") and summary.endswith("; 0 import cycles")
