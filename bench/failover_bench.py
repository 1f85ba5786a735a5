"""Failover figures: from a simulated host's failure (libvirtd, guests and agent killed, links cut,
as `make host-fail` does) to the host declared dead, the fence confirmed, its HA guest ACTIVE on
another host, and that guest answering on its floating IP from the outside — median and worst over
several runs, each failing the next host in turn, and each host recovered (and rejoined) before
the next run.

    sudo .venv/bin/python -m bench.failover_bench [--runs 5]

The stack runs with the defaults an operator gets (heartbeats every KUMO_HEARTBEAT_INTERVAL=10 s,
a host declared dead after KUMO_HOST_FAILURE_AFTER=25 s of silence, the host watch every 5 s)
rather than the tests' fast ones, and the simulated-hosts fencing driver. Needs root and
var/guest/kumo-tiny.qcow2 (make image). Writes artifacts/bench/failover_bench.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from tests.e2e.multihost import Cloud
from tests.e2e.test_failover import (
    _boot,
    _failure,
    _rejoined,
    _running_elsewhere,
    _until,
    failover_net,
)
from tests.e2e.test_guest_networking import Net, _pings
from tests.stack import ROOT, Stack

IMAGE = ROOT / "var" / "guest" / "kumo-tiny.qcow2"
OUT = ROOT / "artifacts" / "bench" / "failover_bench.json"
NET = "192.168.71"
STEPS = ("declared dead", "fence confirmed", "ACTIVE elsewhere", "answering on floating IP")


def one_run(cloud: Cloud, env: dict, host: str, index: int) -> dict[str, float]:
    net: Net = env["net"]
    server = _boot(cloud, env, f"fo-bench-{index}", host, f"{NET}.{20 + index}", ha=True)
    floating = net.create("floatingip", {"floating_network_id": env["public"]["id"],
                                         "port_id": net.one("port", device_id=server)["id"]})
    fip = floating["floating_ip_address"]
    try:
        cloud.active(server)
        _until(lambda: _pings(cloud, fip), "the floating IP before the failure", 180)
        started = time.monotonic()
        cloud.stack.fail_host(host)
        times: dict[str, float] = {}
        _until(lambda: _failure(cloud, host) and _failure(cloud, host)["closed_at"] is None,
               "the failure")
        times["declared dead"] = time.monotonic() - started
        _until(lambda: (_failure(cloud, host) or {}).get("fenced_at"), "the fence")
        times["fence confirmed"] = time.monotonic() - started
        _until(lambda: _running_elsewhere(cloud, server, host), "ACTIVE elsewhere", 300)
        times["ACTIVE elsewhere"] = time.monotonic() - started
        _until(lambda: _pings(cloud, fip), "the floating IP after the failover", 300)
        times["answering on floating IP"] = time.monotonic() - started
        print(f"run {index} ({host}): " + ", ".join(f"{k} {v:.1f} s" for k, v in times.items()),
              flush=True)
        return times
    finally:
        cloud.stack.recover_host(host)
        _until(lambda: _rejoined(cloud, host, [server]), f"{host} to rejoin", 300)
        net.delete("floatingip", floating["id"])
        cloud.delete(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    stack = Stack("fobench", agents=[], simulated_hosts=3, schedulers=1, broker="rabbitmq",
                  extra_env={"KUMO_TASK_DEADLINES": "scheduling=30,spawning=180,default=120",
                             "KUMO_HEARTBEAT_INTERVAL": "10", "KUMO_SERVICE_DOWN_TIME": "60",
                             "KUMO_HOST_FAILURE_AFTER": "25", "KUMO_FENCING_DRIVER": "simulated"})
    runs: list[dict[str, float]] = []
    started = time.monotonic()
    with stack.running():
        api = stack.client(version="2.60")
        cloud = Cloud(stack, api, api.upload_image("kumo-tiny", IMAGE.read_bytes()))
        env = failover_net(Net(cloud), f"{NET}.0/24")
        hosts = sorted(cloud.hosts)
        for index in range(args.runs):
            runs.append(one_run(cloud, env, hosts[index % len(hosts)], index))
    figures: dict[str, object] = {"runs": runs, "wall_s": round(time.monotonic() - started, 1)}
    for step in STEPS:
        values = [r[step] for r in runs]
        figures[step] = {"median_s": round(statistics.median(values), 1),
                         "worst_s": round(max(values), 1)}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps({k: v for k, v in figures.items() if k != "runs"}, indent=2))


if __name__ == "__main__":
    main()
