"""Where a sequential boot's CPU goes, per process: a short probe beside boot_bench.

    .venv/bin/python -m bench.boot_probe [--boots 50] [--hosts 4] [--rounds 1] [--py-spy DIR]

Starts boot_bench's stack (4 test-driver hosts, one scheduler, no volume host), boots --boots
servers one at a time polled every 50 ms as boot_bench does, and prints the stack's CPU-seconds per
boot with each process's share, then an idle window of the same length so the per-second work
(heartbeats, relay, reconciler) can be told from what the boots cost. With --py-spy DIR, each
control-plane process is sampled by py-spy during the boots (raw collapsed stacks in DIR); py-spy is
a tool to install by hand, not a requirement.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench.boot_bench import boot_one, delete_all
from bench.proc_stats import cpu_seconds
from tests.stack import AgentSpec, ApiClient, Stack, qcow2_bytes


def per_process(stack: Stack) -> dict[str, float]:
    return {name: cpu_seconds([p.pid]) for name, p in stack.procs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--boots", type=int, default=50)
    parser.add_argument("--hosts", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--py-spy", type=Path, default=None)
    args = parser.parse_args()
    agents = [AgentSpec(f"bench-{i}", cpus=64, memory_mb=512 * 1024) for i in range(args.hosts)]
    stack = Stack("boot-probe", agents=agents, schedulers=1, volume_hosts=0,
                  extra_env={"KUMO_GUEST_STATS_INTERVAL": "10"}).start()
    hosts = {a.host for a in agents}
    try:
        api = ApiClient(stack.url, stack.token(), "2.60")
        image_id = api.upload_image("probe", qcow2_bytes())
        boot_one(api, image_id, "warm")  # first-use imports and caches out of the figures
        for round_ in range(args.rounds):
            spies: list[subprocess.Popen] = []
            spy = shutil.which("py-spy", path=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
            if args.py_spy and spy:
                args.py_spy.mkdir(parents=True, exist_ok=True)
                for name, proc in stack.procs.items():
                    if name not in hosts:
                        spies.append(subprocess.Popen(
                            [spy, "record", "-r", "200", "-s", "-f", "raw", "-o",
                             str(args.py_spy / f"{name}-{round_}.txt"), "-p", str(proc.pid)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
                time.sleep(1)
            load = os.getloadavg()[0]
            before, start = per_process(stack), time.perf_counter()
            booted = [boot_one(api, image_id, f"probe-{round_}-{i}") for i in range(args.boots)]
            took = time.perf_counter() - start
            after = per_process(stack)
            for spying in spies:
                spying.send_signal(2)
                spying.wait(30)
            idle0 = per_process(stack)
            time.sleep(took)
            idle1 = per_process(stack)
            total = sum(after.values()) - sum(before.values())
            idle_total = sum(idle1.values()) - sum(idle0.values())
            print(f"round {round_}: {args.boots} boots, {took / args.boots * 1000:.0f} ms each, "
                  f"stack CPU {total / args.boots:.4f} s per boot; idle over the same time "
                  f"{idle_total / args.boots:.4f} s per boot-slot; load average {load:.2f} -> "
                  f"{os.getloadavg()[0]:.2f}")
            agents_cpu = sum(after[h] - before[h] for h in hosts)
            agents_idle = sum(idle1[h] - idle0[h] for h in hosts)
            for name in sorted(set(after) - hosts):
                print(f"  {name:12s} {(after[name] - before[name]) / args.boots:.4f} s per boot "
                      f"(idle {(idle1[name] - idle0[name]) / args.boots:.4f})")
            print(f"  {'agents':12s} {agents_cpu / args.boots:.4f} s per boot "
                  f"(idle {agents_idle / args.boots:.4f})")
            delete_all(api, booted)
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
