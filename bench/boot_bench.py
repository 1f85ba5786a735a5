"""Boot and list figures on libvirt's test driver, through the HTTP API of a live stack.

    .venv/bin/python -m bench.boot_bench [--boots 100] [--clients 10] [--servers 1000]

Prints: wall time of N sequential boot+delete cycles, the same with C concurrent clients, and the
time of GET /servers/detail with M servers — each beside a baseline measured in the same run (one
authenticated GET /flavors round trip), so the figures can be compared across machines.
"""

from __future__ import annotations

import argparse
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

from tests.stack import AgentSpec, Stack, qcow2_bytes

V = "/compute/v2.1"


def boot_and_delete(api, image_id: str, name: str) -> None:
    body = {"server": {"name": name, "imageRef": image_id, "flavorRef": "1", "networks": "none"}}
    response = api.post(f"{V}/servers", body)
    response.raise_for_status()
    server_id = response.json()["server"]["id"]
    server = api.wait_for(server_id, {"ACTIVE", "ERROR"}, timeout=120)
    if server["status"] != "ACTIVE":
        raise RuntimeError(f"boot failed: {server.get('fault')}")
    api.delete(f"{V}/servers/{server_id}").raise_for_status()
    api.wait_gone(server_id, timeout=120)


def timed(fn, repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boots", type=int, default=100)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--servers", type=int, default=1000)
    args = parser.parse_args()

    agents = [AgentSpec("bench-a", cpus=64, memory_mb=512 * 1024),
              AgentSpec("bench-b", cpus=64, memory_mb=512 * 1024)]
    stack = Stack("bench", agents=agents).start()
    try:
        api = stack.client()
        image_id = api.upload_image("bench", qcow2_bytes())
        baseline = statistics.median(timed(lambda: api.get(f"{V}/flavors").raise_for_status(), 50))
        print(f"baseline: GET /flavors round trip p50 {baseline * 1000:.1f} ms")

        start = time.perf_counter()
        for i in range(args.boots):
            boot_and_delete(api, image_id, f"seq-{i}")
        sequential = time.perf_counter() - start
        print(f"{args.boots} sequential boot+delete: {sequential:.1f} s "
              f"({sequential / args.boots * 1000:.0f} ms each, {sequential / args.boots / baseline:.0f}x baseline)")

        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.clients) as pool:
            list(pool.map(lambda i: boot_and_delete(stack.client(), image_id, f"par-{i}"),
                          range(args.boots)))
        concurrent = time.perf_counter() - start
        print(f"{args.boots} boot+delete with {args.clients} concurrent clients: {concurrent:.1f} s "
              f"(speed-up {sequential / concurrent:.2f}x over sequential)")

        body = {"server": {"name": "list", "imageRef": image_id, "flavorRef": "1",
                           "networks": "none", "min_count": args.servers, "max_count": args.servers}}
        api.post(f"{V}/servers", body).raise_for_status()
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            listed = api.get(f"{V}/servers/detail?status=BUILD").json()["servers"]
            if not listed:
                break
            time.sleep(2)
        count = len(api.get(f"{V}/servers/detail").json()["servers"])
        samples = timed(lambda: api.get(f"{V}/servers/detail").raise_for_status(), 10)
        p50 = statistics.median(samples)
        print(f"GET /servers/detail with {count} servers: p50 {p50 * 1000:.0f} ms, "
              f"min {min(samples) * 1000:.0f} ms ({p50 / baseline:.0f}x baseline)")
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
