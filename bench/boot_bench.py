"""Boot and list figures on libvirt's test driver, through the HTTP API of a live stack.

    .venv/bin/python -m bench.boot_bench [--boots 100] [--clients 10] [--hosts 4] [--few 25] [--many 250]

Prints, and writes to artifacts/bench/boot_bench.json, measured as ../shared/nova-anchor's harness
measures Nova: N sequential boots, each polled every 50 ms (wall time, and the stack's CPU-seconds
per boot, summed over every process of the stack from /proc; the deletes after them apart); N boots
posted by C concurrent clients, the list polled every 0.5 s until all are ACTIVE (boots per second); the control plane's resident memory with the agents
running; the agents' and the conductor's CPU-seconds per boot with FEW and then MANY guests resident
per host (what a boot costs should not grow with what a host already runs); and GET /servers/detail
with all of those servers beside a baseline timed in the same run: the raw SQL query of the same rows
plus their JSON encoding (bench/web_bench.py's raw_rows_as_json: the columns some body shows and the
servers' ports). One token serves every request, as a real client
keeps its token: asking for one per boot measured password hashing instead of boots.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg

from bench.proc_stats import cpu_seconds, pss_mib, rss_by_process, rss_mib
from bench.web_bench import raw_rows_as_json
from tests.stack import ROOT, AgentSpec, ApiClient, Stack, qcow2_bytes

V = "/compute/v2.1"
OUT = Path(os.environ.get("KUMO_ARTIFACTS_DIR", ROOT / "artifacts")) / "bench" / "boot_bench.json"


def boot_and_delete(api: ApiClient, image_id: str, name: str) -> None:
    body = {"server": {"name": name, "imageRef": image_id, "flavorRef": "1", "networks": "none"}}
    response = api.post(f"{V}/servers", body)
    response.raise_for_status()
    server_id = response.json()["server"]["id"]
    server = api.wait_for(server_id, {"ACTIVE", "ERROR"}, timeout=120)
    if server["status"] != "ACTIVE":
        raise RuntimeError(f"boot failed: {server.get('fault')}")
    api.delete(f"{V}/servers/{server_id}").raise_for_status()
    api.wait_gone(server_id, timeout=120)


def post_server(api: ApiClient, image_id: str, name: str) -> str:
    body = {"server": {"name": name, "imageRef": image_id, "flavorRef": "1", "networks": "none"}}
    response = api.post(f"{V}/servers", body)
    response.raise_for_status()
    return response.json()["server"]["id"]


def boot_one(api: ApiClient, image_id: str, name: str) -> str:
    server_id = post_server(api, image_id, name)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        server = api.get(f"{V}/servers/{server_id}").json()["server"]
        if server["status"] == "ACTIVE":
            return server_id
        if server["status"] == "ERROR":
            raise RuntimeError(f"boot failed: {server.get('fault')}")
        time.sleep(0.05)
    raise TimeoutError(f"{server_id} not ACTIVE after 120 s")


def wait_listed_active(api: ApiClient, ids: set[str], timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listed = api.get(f"{V}/servers/detail").json()["servers"]
        if {s["id"] for s in listed if s["status"] == "ACTIVE"} >= ids:
            return
        if failed := [s for s in listed if s["id"] in ids and s["status"] == "ERROR"]:
            raise RuntimeError(f"boot failed: {failed[0].get('fault')}")
        time.sleep(0.5)
    raise TimeoutError("not every server became ACTIVE")


def delete_all(api: ApiClient, ids: list[str]) -> None:
    for server_id in ids:
        api.delete(f"{V}/servers/{server_id}").raise_for_status()
    for server_id in ids:
        api.wait_gone(server_id, timeout=120)


def timed(fn, repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def fill_to(api: ApiClient, image_id: str, total: int) -> int:
    """Boot servers (one multi-create) until `total` exist and none is building; how many exist."""
    have = len(api.get(f"{V}/servers").json()["servers"])
    if total > have:
        body = {"server": {"name": "resident", "imageRef": image_id, "flavorRef": "1",
                           "networks": "none", "min_count": total - have, "max_count": total - have}}
        api.post(f"{V}/servers", body).raise_for_status()
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        if not api.get(f"{V}/servers/detail?status=BUILD").json()["servers"]:
            break
        time.sleep(2)
    return len(api.get(f"{V}/servers").json()["servers"])


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--boots", type=int, default=100)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--few", type=int, default=25, help="guests per host, the cheap case")
    parser.add_argument("--many", type=int, default=250, help="guests per host, the loaded case")
    parser.add_argument("--probe-boots", type=int, default=20)
    parser.add_argument("--idle-seconds", type=float, default=10)
    parser.add_argument("--hosts", type=int, default=4)
    args = parser.parse_args()

    agents = [AgentSpec(f"bench-{i}", cpus=64, memory_mb=512 * 1024) for i in range(args.hosts)]
    # One scheduler as in the Procfile; guests' statistics at the agents' default period. No volume
    # host: the memory figure sits beside Nova's, measured without cinder-volume.
    stack = Stack("boot-bench", agents=agents, schedulers=1, volume_hosts=0,
                  extra_env={"KUMO_GUEST_STATS_INTERVAL": "10"}).start()
    figures: dict[str, object] = {"boots": args.boots, "clients": args.clients, "hosts": args.hosts,
                                  "load_average_at_start": os.getloadavg()}
    try:
        token = stack.token()
        api = ApiClient(stack.url, token, "2.60")
        local = threading.local()

        def client() -> ApiClient:
            # One session per thread (a requests.Session is not thread-safe), one token for all.
            if not hasattr(local, "api"):
                local.api = ApiClient(stack.url, token, "2.60")
            return local.api

        image_id = api.upload_image("bench", qcow2_bytes())
        pids = [p.pid for p in stack.procs.values()]
        control = [p.pid for name, p in stack.procs.items() if name not in {a.host for a in agents}]
        baseline = statistics.median(timed(lambda: api.get(f"{V}/flavors").raise_for_status(), 50))
        print(f"baseline: GET /flavors round trip p50 {baseline * 1000:.1f} ms")

        # As ../shared/nova-anchor/bench_both.py measures Nova: boots only (deletes apart), one at a
        # time polled every 50 ms; then N POSTs from C clients and the list polled every 0.5 s.
        cpu0, start = cpu_seconds(pids), time.perf_counter()
        booted = [boot_one(api, image_id, f"seq-{i}") for i in range(args.boots)]
        sequential = time.perf_counter() - start
        cpu_per_boot = (cpu_seconds(pids) - cpu0) / args.boots
        print(f"{args.boots} sequential boots: {sequential:.1f} s "
              f"({sequential / args.boots * 1000:.0f} ms each); stack CPU {cpu_per_boot:.3f} s per boot")
        cpu0 = cpu_seconds(pids)
        delete_all(api, booted)
        cpu_per_delete = (cpu_seconds(pids) - cpu0) / args.boots
        print(f"  and their deletes: stack CPU {cpu_per_delete:.3f} s per delete")

        cpu0, start = cpu_seconds(pids), time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.clients) as pool:
            posted = list(pool.map(lambda i: post_server(client(), image_id, f"par-{i}"),
                                   range(args.boots)))
        wait_listed_active(api, set(posted))
        concurrent = time.perf_counter() - start
        concurrent_cpu = (cpu_seconds(pids) - cpu0) / args.boots
        print(f"{args.boots} boots from {args.clients} concurrent clients: {concurrent:.1f} s "
              f"= {args.boots / concurrent:.1f} boots/s; stack CPU {concurrent_cpu:.3f} s per boot")
        delete_all(api, posted)
        rss, pss, with_agents = rss_mib(control), pss_mib(control), rss_mib(pids)
        print(f"control-plane RSS {rss:.0f} MiB (PSS {pss:.0f}); with its {args.hosts} agents "
              f"RSS {with_agents:.0f} MiB")
        by_process = rss_by_process({name: p.pid for name, p in stack.procs.items()})
        print("  RSS per process (MiB): " + ", ".join(f"{n} {m:.1f}" for n, m in by_process.items()))

        # Agents and conductor: what a boot costs them with few and with many guests per host.
        hosts_side = [p.pid for name, p in stack.procs.items()
                      if name == "conductor" or name in {a.host for a in agents}]
        host_cost: dict[int, float] = {}
        for per_host in (args.few, args.many):
            fill_to(api, image_id, per_host * args.hosts)
            time.sleep(3)  # the reports of the fill settle first

            def idle() -> float:
                cpu0, start = cpu_seconds(hosts_side), time.perf_counter()
                time.sleep(args.idle_seconds)
                return (cpu_seconds(hosts_side) - cpu0) / (time.perf_counter() - start)

            # What the hosts cost idle (heartbeats, statistics: periodic, whatever boots) is taken
            # off, so the figure is what a boot adds. Measured before and after the boots, and the
            # lower taken: work left over from the fill, or another process's burst on a shared
            # machine, inflated a single window enough to halve a figure.
            before = idle()
            cpu0, start = cpu_seconds(hosts_side), time.perf_counter()
            for i in range(args.probe_boots):
                boot_and_delete(api, image_id, f"probe-{per_host}-{i}")
            spent, took = cpu_seconds(hosts_side) - cpu0, time.perf_counter() - start
            after = idle()
            idle_rate = min(before, after)
            host_cost[per_host] = (spent - idle_rate * took) / args.probe_boots
            print(f"agents + conductor CPU per boot+delete with {per_host} guests per host: "
                  f"{host_cost[per_host]:.3f} s (idle: {idle_rate:.3f} CPU-s/s taken off; "
                  f"{before:.3f} before the boots, {after:.3f} after)")
        growth = host_cost[args.many] / host_cost[args.few]
        print(f"  {args.many} per host costs {growth:.2f}x what {args.few} per host costs")
        listed = api.get(f"{V}/servers/detail").json()["servers"]
        count, project_id = len(listed), listed[0]["tenant_id"]
        samples = timed(lambda: api.get(f"{V}/servers/detail").raise_for_status(), 10)
        dsn = stack.env["DATABASE_URL"].replace("postgres://", "postgresql://")
        # The baseline shared with web_bench --list: the same columns, on a connection kept open.
        with psycopg.connect(dsn) as conn:
            raw = statistics.median(timed(lambda: raw_rows_as_json(conn, project_id), 10))
        p50 = statistics.median(samples)
        print(f"GET /servers/detail with {count} servers: p50 {p50 * 1000:.0f} ms; raw SQL + JSON "
              f"of the same rows p50 {raw * 1000:.0f} ms ({p50 / raw:.1f}x)")
        figures.update({
            "baseline_get_flavors_s": baseline, "sequential_s": sequential,
            "stack_cpu_s_per_boot_sequential": cpu_per_boot,
            "stack_cpu_s_per_delete": cpu_per_delete, "concurrent_s": concurrent,
            "boots_per_s_concurrent": args.boots / concurrent,
            "stack_cpu_s_per_boot_concurrent": concurrent_cpu, "control_plane_rss_mib": rss,
            "control_plane_pss_mib": pss, "stack_rss_mib_with_agents": with_agents,
            "stack_rss_mib_by_process": by_process,
            "agent_conductor_cpu_s_per_boot": {str(k): v for k, v in host_cost.items()},
            "agent_conductor_growth": growth, "servers_listed": count, "servers_detail_p50_s": p50, "raw_sql_json_p50_s": raw,
            "servers_detail_over_raw": p50 / raw, "load_average_at_end": os.getloadavg(),
        })
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(json.dumps(figures, indent=2))
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
