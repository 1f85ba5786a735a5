"""bench/nova_side.py's summary and bench/report.py's table of it: which way each ratio points and
when a goal counts as met (a figure read upside down would claim a goal met that is not)."""

from __future__ import annotations

from typing import Any

from bench.nova_side import summary
from bench.report import nova_rows


def _stack(cpu_seq: float, cpu_conc: float, rate: float, list_s: float, rss: float) -> dict:
    return {
        "started": {"loadavg": [1.0, 1.0, 1.0]}, "ended_loadavg": [2.0, 1.0, 1.0],
        "cpu_s_per_boot_sequential": cpu_seq, "cpu_s_per_boot_concurrent": cpu_conc,
        "boots_per_s_concurrent": rate, "list_p50_s": list_s, "list_servers": 100,
        "rss_mib": rss, "pss_mib": rss * 0.8,
        "phases": {"seq": {"stack_cpu_s": {"TOTAL": cpu_seq * 100}, "wall_s": 10.0,
                           "servers": 100}},
    }


def _side(kumo_rate: float, kumo_rss: float) -> dict[str, Any]:
    rounds = [{"nova": _stack(0.8, 1.0, 2.0, 0.4, 2000), "kumo": _stack(0.02, 0.04, kumo_rate,
                                                                       0.02, kumo_rss)}]
    return {"rounds": rounds, "summary": summary(rounds, {"nova": 0.1, "kumo": 0.1}),
            "hosts": 4, "clients": 10, "started": "s", "ended": "e",
            "revision": {"commit": "abc"}}


def _row(table: list[str], start: str) -> list[str]:
    line = next(line for line in table if line.startswith(f"| {start}"))
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_costs_are_nova_over_kumo_and_rates_kumo_over_nova() -> None:
    fig = _side(kumo_rate=60.0, kumo_rss=500)["summary"]
    assert fig["cpu_s_per_boot_sequential"]["ratio"] == [0.8 / 0.02]
    assert fig["boots_per_s_concurrent"]["ratio"] == [60.0 / 2.0]
    assert fig["rss_mib"]["ratio"] == [2000 / 500]
    # 0.1 CPU-s/s idle over the 10 s the boots took, off each stack's 100 boots.
    assert fig["cpu_s_per_boot_sequential_less_idle"]["kumo"] == [(2.0 - 1.0) / 100]


def test_goals_met_and_not() -> None:
    table = nova_rows(_side(kumo_rate=60.0, kumo_rss=500))
    assert _row(table, "stack CPU-s per boot, sequential")[-1] == "yes"  # 40× ≥ 25×
    assert _row(table, "boots/s")[-1] == "yes"  # 30× ≥ 25×
    assert _row(table, "RSS")[-1] == "yes"  # 4× and 500 MiB

    table = nova_rows(_side(kumo_rate=40.0, kumo_rss=650))
    assert _row(table, "boots/s")[-1] == "no"  # 20×
    assert _row(table, "RSS")[-1] == "no"  # over 600 MiB though 3.1× less than Nova
