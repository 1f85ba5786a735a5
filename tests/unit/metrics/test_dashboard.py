"""docs/grafana-kumo.json asks only for families /metrics declares."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.django_db

DASHBOARD = Path(__file__).resolve().parents[3] / "docs" / "grafana-kumo.json"
SUFFIXES = ("_bucket", "_count", "_sum", "_total")


def dashboard_expressions() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [t["expr"] for p in panels for t in p.get("targets", [])]


def test_every_metric_name_in_the_dashboard_is_a_declared_family(scrape):
    declared = set(re.findall(r"^# TYPE (\S+) ", scrape().text, re.MULTILINE))
    used = {name for expr in dashboard_expressions() for name in re.findall(r"kumo_\w+", expr)}
    assert used
    unknown = {
        name for name in used
        if name not in declared
        and not any(name.endswith(s) and name.removesuffix(s) in declared for s in SUFFIXES)
    }
    assert unknown == set()
