import os
from pathlib import Path

import pytest

# Rally's virtualenv takes 80-160 s to install (rally-openstack pulls about 130 packages), so
# scripts/setup.sh --test does not make it and CI, where a skip fails (KUMO_NO_SKIPS), leaves its
# test out rather than paying that on every run. Made with `scripts/setup.sh --rally`, it runs.
_RALLY = Path(__file__).resolve().parents[2] / ".venv-rally" / "bin" / "rally"
collect_ignore = ["test_rally.py"] if os.environ.get("KUMO_NO_SKIPS") and not _RALLY.exists() else []


def pytest_collection_modifyitems(items):
    for item in items:
        if "/compat/" in str(item.fspath):
            item.add_marker(pytest.mark.compat)
