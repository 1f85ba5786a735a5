"""One table of the speed goals (issue 16) from the figures the benches wrote in this run.

    .venv/bin/python -m bench.report          # after bench/run_all.sh; `make bench` runs both

Reads artifacts/bench/{boot_bench,scheduler_bench,console_bench}.json, prints a Markdown table of
each figure beside its goal and its in-run baseline, and writes it to artifacts/bench/report.md.
Ratios against Nova need Nova measured in the same sitting (../shared/nova-anchor); without it the
Nova column shows the figures recorded there, marked as such, and no ratio is claimed from them.
With NOVA_BENCH=1 (`NOVA_BENCH=1 make bench` runs bench/nova_side.py first) the table starts with
the figures of artifacts/bench/nova_side.json: Nova and Kumo driven alike by the anchor's harness in
interleaved rounds, each ratio taken within a round.
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


def rows(side: dict[str, Any] | None = None) -> list[str]:
    """The goal table from this run's benches; with `side` (bench/nova_side.py's figures of the
    same sitting) boot_bench's figures are set against that Nova rather than the recorded one."""
    out = ["| figure | Kumo, this run | baseline | goal | met |", "|---|---|---|---|---|"]
    boot = _load("boot_bench")
    if boot:
        cpu = boot["stack_cpu_s_per_boot_sequential"]
        bps = boot["boots_per_s_concurrent"]
        if side:
            nova_cpu = side["summary"]["cpu_s_per_boot_sequential"]["nova"]
            nova_bps = side["summary"]["boots_per_s_concurrent"]["nova"]
            cpu_base, bps_base = (f"Nova {_span(nova_cpu, '.3f')} s (this sitting)",
                                  f"Nova {_span(nova_bps, '.2f')}/s (this sitting)")
            cpu_vs = f"{min(nova_cpu) / cpu:.0f}–{max(nova_cpu) / cpu:.0f}× less than Nova"
            bps_vs = f"{bps / max(nova_bps):.0f}–{bps / min(nova_bps):.0f}× Nova"
        else:
            cpu_base, bps_base = (f"Nova {NOVA_RECORDED['cpu_per_boot']}",
                                  f"Nova {NOVA_RECORDED['boots_per_s']}")
            cpu_vs = f"{0.54 / cpu:.0f}–{1.05 / cpu:.0f}× less than recorded Nova"
            bps_vs = f"{bps / 1.9:.0f}–{bps / 1.4:.0f}× recorded Nova"
        out.append(_row("stack CPU-s per boot, sequential", f"{cpu:.3f} s", cpu_base,
                        "≤ 1/25 of Nova", cpu_vs))
        out.append(_row(f"boots/s from {boot['clients']} clients, {boot['hosts']} hosts",
                        f"{bps:.1f}/s", bps_base, "≥ 25× Nova", bps_vs))
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
        if "stack_rss_mib_by_process" in boot:  # per process, MiB (agents: each)
            parts = boot["stack_rss_mib_by_process"]
            out.append(_row("  of which, per process", ", ".join(
                f"{name} {mib:.0f}" for name, mib in parts.items()), "", "", ""))
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


def _span(values: list[float], fmt: str) -> str:
    low, high = min(values), max(values)
    return format(low, fmt) if format(low, fmt) == format(high, fmt) else \
        f"{format(low, fmt)}–{format(high, fmt)}"


def nova_rows(side: dict[str, Any]) -> list[str]:
    """Nova beside Kumo, same sitting (bench/nova_side.py): per figure both stacks' values over
    the rounds, the within-round ratios (how far ahead Kumo is), the goal, and whether the median
    round meets it."""
    fig = side["summary"]
    hosts, clients = side["hosts"], side["clients"]
    out = [(f"Side by side with Nova ({len(side['rounds'])} interleaved rounds, "
            f"{side['started']}–{side['ended']} UTC, at {side['revision']['commit']}):"), "",
           "| figure | Nova | Kumo | ratio | goal | met |", "|---|---|---|---|---|---|"]

    def row(key: str, figure: str, fmt: str, unit: str, goal: str, met: str) -> None:
        f = fig[key]
        scale = 1000 if unit == " ms" else 1
        nova = _span([v * scale for v in f["nova"]], fmt) + unit
        kumo = _span([v * scale for v in f["kumo"]], fmt) + unit
        out.append(f"| {figure} | {nova} | {kumo} | {_span(f['ratio'], '.1f')}× | {goal} | {met} |")

    def at_least(key: str, need: float) -> str:
        return "yes" if fig[key]["ratio_median"] >= need else "no"

    row("cpu_s_per_boot_sequential", f"stack CPU-s per boot, sequential, {hosts} hosts", ".3f",
        " s", "≤ 1/25 of Nova", at_least("cpu_s_per_boot_sequential", 25))
    row("cpu_s_per_boot_sequential_less_idle", "  the same, each stack's idle CPU rate taken off",
        ".3f", " s", "(none set)", "—")
    row("cpu_s_per_boot_concurrent", f"stack CPU-s per boot, {clients} clients", ".3f", " s",
        "(none set)", "—")
    row("boots_per_s_concurrent", f"boots/s from {clients} clients, {hosts} hosts", ".2f", "/s",
        "≥ 25× Nova", at_least("boots_per_s_concurrent", 25))
    listed = side["rounds"][0]["kumo"]["list_servers"]
    row("list_p50_s", f"GET /servers/detail, {listed} servers, p50", ".0f", " ms",
        "(set against raw SQL + JSON)", "—")
    small = max(fig["rss_mib"]["kumo"]) <= 600
    row("rss_mib", f"RSS of the stack's processes, {hosts} hosts", ".0f", " MiB",
        "≤ 1/3 of Nova, ≤ 600 MiB", "yes" if small and at_least("rss_mib", 3) == "yes" else "no")
    placement, scheduler = side.get("placement"), side.get("scheduler")
    if placement and scheduler:
        ok = scheduler["decisions_per_s"] >= 300 and scheduler["p99_ms"] <= 50
        out.append(
            f"| scheduler at {placement['hosts']} hosts: Placement's allocation-candidates "
            f"query (1 thread) vs Kumo's decision with claim ({scheduler['threads']} threads) | "
            f"{placement['queries_per_s']:.1f}/s, p50 {placement['p50_ms']:.0f} ms | "
            f"{scheduler['decisions_per_s']:.0f}/s, p50 {scheduler['p50_ms']:.0f} ms, "
            f"p99 {scheduler['p99_ms']:.0f} ms | "
            f"{scheduler['decisions_per_s'] / placement['queries_per_s']:.0f}× | "
            f"≥ 300/s, p99 ≤ 50 ms | {'yes' if ok else 'no'} |")
    loads = [f"{stack} r{n} {r[stack]['started']['loadavg'][0]:.1f}→{r[stack]['ended_loadavg'][0]:.1f}"
             for n, r in enumerate(side["rounds"], 1) for stack in ("nova", "kumo")]
    out += ["", "load average (1 min) at each run's start → end: " + ", ".join(loads)]
    if placement and scheduler:
        out[-1] += (f"; Placement {placement['loadavg'][0]:.1f}, "
                    f"Kumo's scheduler {scheduler['load_average']:.1f}")
    return out


def main() -> None:
    side = _load("nova_side") if os.environ.get("NOVA_BENCH") == "1" else None
    if side and "summary" not in side:  # a run that did not finish has its rounds, no summary
        side = None
    table = "\n".join(rows(side))
    if side:
        table = "\n".join(nova_rows(side)) + "\n\nThis run's other figures:\n\n" + table
    load = os.getloadavg()
    text = f"{table}\n\nload average at report time: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}\n"
    print(text)
    DIR.mkdir(parents=True, exist_ok=True)
    (DIR / "report.md").write_text(text)


if __name__ == "__main__":
    main()
