"""One table of the speed goals (issue 16) from the figures the benches wrote in this run.

    .venv/bin/python -m bench.report          # after bench/run_all.sh; `make bench` runs both

Reads artifacts/bench/{boot_bench,scheduler_bench,console_bench}.json, prints a Markdown table of
each figure beside its goal and its in-run baseline, and writes it to artifacts/bench/report.md.
Ratios against Nova need Nova measured in the same sitting (../shared/nova-anchor); without it the
Nova column shows the figures recorded there, marked as such, and no ratio is claimed from them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tests.stack import ROOT

DIR = Path(os.environ.get("KUMO_ARTIFACTS_DIR", ROOT / "artifacts")) / "bench"
# Recorded by ../shared/nova-anchor on this machine kind (2026-12-05), not in this run.
NOVA_RECORDED = {
    "cpu_per_boot": "0.54–1.05 s (recorded)",
    "boots_per_s": "1.4–1.9/s (recorded)",
    "rss": "1.9–2.2 GiB (recorded)",
}


def _load(name: str) -> dict[str, Any] | None:
    path = DIR / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _row(figure: str, kumo: str, baseline: str, goal: str, verdict: str) -> str:
    return f"| {figure} | {kumo} | {baseline} | {goal} | {verdict} |"


def rows() -> list[str]:
    out = ["| figure | Kumo, this run | baseline | goal | met |", "|---|---|---|---|---|"]
    boot = _load("boot_bench")
    if boot:
        cpu = boot["stack_cpu_s_per_boot_sequential"]
        out.append(_row("stack CPU-s per boot, sequential", f"{cpu:.3f} s",
                        f"Nova {NOVA_RECORDED['cpu_per_boot']}", "≤ 1/25 of Nova",
                        f"{0.54 / cpu:.0f}–{1.05 / cpu:.0f}× less than recorded Nova"))
        bps = boot["boots_per_s_concurrent"]
        out.append(_row(f"boots/s from {boot['clients']} clients, {boot['hosts']} hosts",
                        f"{bps:.1f}/s", f"Nova {NOVA_RECORDED['boots_per_s']}", "≥ 25× Nova",
                        f"{bps / 1.9:.0f}–{bps / 1.4:.0f}× recorded Nova"))
        ratio = boot["servers_detail_over_raw"]
        out.append(_row(f"GET /servers/detail, {boot['servers_listed']} servers, p50",
                        f"{boot['servers_detail_p50_s'] * 1000:.0f} ms",
                        f"raw SQL + JSON {boot['raw_sql_json_p50_s'] * 1000:.0f} ms",
                        "≤ 2× raw", "yes" if ratio <= 2 else f"no ({ratio:.1f}×)"))
        rss = boot["stack_rss_mib_with_agents"]
        out.append(_row(f"stack RSS with {boot['hosts']} agents", f"{rss:.0f} MiB "
                        f"(control plane {boot['control_plane_rss_mib']:.0f}, "
                        f"PSS {boot['control_plane_pss_mib']:.0f})",
                        f"Nova {NOVA_RECORDED['rss']}", "≤ 600 MiB, ≤ 1/3 Nova",
                        "yes" if rss <= 600 else "no"))
        growth = boot["agent_conductor_growth"]
        few, many = sorted(boot["agent_conductor_cpu_s_per_boot"], key=int)
        costs = boot["agent_conductor_cpu_s_per_boot"]
        out.append(_row(f"agents + conductor CPU per boot, {many} vs {few} guests per host",
                        f"{costs[many]:.3f} vs {costs[few]:.3f} s", f"{growth:.2f}×",
                        "≤ 1.1×", "yes" if growth <= 1.1 else "no"))
    scheduler = _load("scheduler_bench")
    if scheduler:
        for hosts, goal in (("1000", 300), ("10000", 60)):
            if hosts in scheduler:
                fig = scheduler[hosts]
                ok = fig["decisions_per_s"] >= goal and (hosts != "1000" or fig["p99_ms"] <= 50)
                out.append(_row(f"scheduler decisions/s with claims, {hosts} hosts",
                                f"{fig['decisions_per_s']:.0f}/s, p50 {fig['p50_ms']:.0f} ms, "
                                f"p99 {fig['p99_ms']:.0f} ms", "zero overcommit checked",
                                f"≥ {goal}/s" + (", p99 ≤ 50 ms" if hosts == "1000" else ""),
                                "yes" if ok else "no"))
    console = _load("console_bench")
    if console:
        ratio = console["ratio"]
        out.append(_row("console relay throughput", f"{console['kumo_mb_s']:.0f} MB/s",
                        f"websockify {console['websockify_mb_s']:.0f} MB/s", "≥ 1.0×",
                        "yes" if ratio >= 1.0 else f"no ({ratio:.2f}×)"))
    return out


def main() -> None:
    table = "\n".join(rows())
    load = os.getloadavg()
    text = f"{table}\n\nload average at report time: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}\n"
    print(text)
    DIR.mkdir(parents=True, exist_ok=True)
    (DIR / "report.md").write_text(text)


if __name__ == "__main__":
    main()
