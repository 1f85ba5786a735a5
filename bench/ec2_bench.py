"""RunInstances to `running` through the EC2 API against the same boot through the OpenStack API,
in one run, on a stack of its own (issue 18's figure).

    .venv/bin/python -m bench.ec2_bench [--boots 10] [--hosts 2]

Four ways of booting one m1.tiny server on the shared `private` network, interleaved round by
round so a busy machine weighs on each alike, N of each:

- ec2-waiter: boto3's RunInstances, then its `instance_running` waiter with Delay=1 (the
  default, 15 s, would measure the waiter's sleep);
- ec2-poll: RunInstances, then DescribeInstances of the one id every 0.1 s until `running`;
- os-wait: openstacksdk's create_server, then compute.wait_for_server with interval=1;
- os-poll: create_server, then get_server every 0.1 s until ACTIVE.

The poll figures are the boot as each API reports it; the waiter figures are what a script
written with each client's own waiting sees. The create call alone (RunInstances's answer, the
POST /servers answer) is timed too. Each server is deleted after its boot, untimed. Prints
median and p90 of each, and writes artifacts/bench/ec2_bench.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import boto3
import openstack
import requests
from botocore.config import Config

from tests.stack import ROOT, AgentSpec, Stack, qcow2_bytes

OUT = Path(os.environ.get("KUMO_ARTIFACTS_DIR", ROOT / "artifacts")) / "bench" / "ec2_bench.json"
POLL = 0.1
TIMEOUT = 120.0


def ec2_id(prefix: str, uuid: str) -> str:
    return f"{prefix}-{uuid.replace('-', '')[:17]}"


def ec2_pair(stack: Stack) -> tuple[str, str]:
    """An EC2 credential of admin on the admin project, as `openstack ec2 credentials create`
    makes one (Keystone's OS-EC2 call)."""
    token = stack.token()
    who = requests.get(f"{stack.url}/identity/v3/auth/tokens", timeout=30, headers={
        "X-Auth-Token": token, "X-Subject-Token": token}).json()["token"]
    made = requests.post(
        f"{stack.url}/identity/v3/users/{who['user']['id']}/credentials/OS-EC2",
        json={"tenant_id": who["project"]["id"]}, headers={"X-Auth-Token": token}, timeout=30)
    made.raise_for_status()
    credential = made.json()["credential"]
    return credential["access"], credential["secret"]


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def until(done: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(POLL)


class Ec2Side:
    def __init__(self, stack: Stack, image: str, subnet: str) -> None:
        access, secret = ec2_pair(stack)
        self.client = boto3.client(
            "ec2", endpoint_url=f"{stack.url}/ec2", region_name="RegionOne",
            aws_access_key_id=access, aws_secret_access_key=secret,
            config=Config(retries={"max_attempts": 1}))
        self.image, self.subnet = image, subnet

    def _run(self) -> tuple[str, float]:
        start = time.perf_counter()
        ran = self.client.run_instances(ImageId=self.image, InstanceType="m1.tiny", MinCount=1,
                                        MaxCount=1, SubnetId=self.subnet)
        return ran["Instances"][0]["InstanceId"], time.perf_counter() - start

    def _state(self, instance_id: str) -> str:
        answer = self.client.describe_instances(InstanceIds=[instance_id])
        state = answer["Reservations"][0]["Instances"][0]["State"]["Name"]
        if state in ("terminated", "shutting-down"):
            raise RuntimeError(f"{instance_id} went {state} while booting")
        return str(state)

    def boot_waiter(self) -> tuple[float, float, str]:
        start = time.perf_counter()
        instance_id, call = self._run()
        self.client.get_waiter("instance_running").wait(
            InstanceIds=[instance_id], WaiterConfig={"Delay": 1, "MaxAttempts": int(TIMEOUT)})
        return time.perf_counter() - start, call, instance_id

    def boot_poll(self) -> tuple[float, float, str]:
        start = time.perf_counter()
        instance_id, call = self._run()
        until(lambda: self._state(instance_id) == "running", f"{instance_id} running")
        return time.perf_counter() - start, call, instance_id

    def delete(self, instance_id: str) -> None:
        self.client.terminate_instances(InstanceIds=[instance_id])
        self.client.get_waiter("instance_terminated").wait(
            InstanceIds=[instance_id], WaiterConfig={"Delay": 0.5, "MaxAttempts": 240})


class OpenStackSide:
    def __init__(self, stack: Stack, image: str, network: str) -> None:
        self.conn = openstack.connect(
            auth_url=f"{stack.url}/identity/v3", username="admin",
            password=stack.admin_password, project_name="admin", user_domain_name="Default",
            project_domain_name="Default", region_name="RegionOne", interface="public",
            identity_api_version="3")
        self.image, self.network = image, network

    def _create(self):  # -> openstack.compute.v2.server.Server
        start = time.perf_counter()
        server = self.conn.compute.create_server(
            name="os-bench", image_id=self.image, flavor_id="1",
            networks=[{"uuid": self.network}])
        return server, time.perf_counter() - start

    def boot_wait(self) -> tuple[float, float, str]:
        start = time.perf_counter()
        server, call = self._create()
        self.conn.compute.wait_for_server(server, interval=1, wait=TIMEOUT)
        return time.perf_counter() - start, call, server.id

    def boot_poll(self) -> tuple[float, float, str]:
        start = time.perf_counter()
        server, call = self._create()

        def active() -> bool:
            status = self.conn.compute.get_server(server.id).status
            if status == "ERROR":
                raise RuntimeError(f"{server.id} went ERROR while booting")
            return bool(status == "ACTIVE")
        until(active, f"{server.id} ACTIVE")
        return time.perf_counter() - start, call, server.id

    def delete(self, server_id: str) -> None:
        server = self.conn.compute.get_server(server_id)
        self.conn.compute.delete_server(server)
        self.conn.compute.wait_for_delete(server, interval=0.5, wait=TIMEOUT)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--boots", type=int, default=10, help="boots of each kind")
    parser.add_argument("--hosts", type=int, default=2)
    args = parser.parse_args()

    agents = [AgentSpec(f"ec2-bench-{i}", cpus=64, memory_mb=64 * 1024)
              for i in range(args.hosts)]
    stack = Stack("ec2-bench", agents=agents, schedulers=1, volume_hosts=0,
                  extra_env={"KUMO_GUEST_STATS_INTERVAL": "10"}).start()
    figures: dict[str, object] = {"boots": args.boots, "hosts": args.hosts,
                                  "load_average_at_start": os.getloadavg()}
    try:
        api = stack.client("2.60")
        image_id = api.upload_image("ec2-bench", qcow2_bytes())
        subnet = api.get("/network/v2.0/subnets?name=private-subnet").json()["subnets"][0]
        ec2 = Ec2Side(stack, ec2_id("ami", image_id), ec2_id("subnet", subnet["id"]))
        osa = OpenStackSide(stack, image_id, subnet["network_id"])
        kinds: dict[str, tuple[Callable[[], tuple[float, float, str]], Callable[[str], None]]] = {
            "ec2-waiter": (ec2.boot_waiter, ec2.delete),
            "ec2-poll": (ec2.boot_poll, ec2.delete),
            "os-wait": (osa.boot_wait, osa.delete),
            "os-poll": (osa.boot_poll, osa.delete),
        }
        for boot, delete in kinds.values():  # one untimed boot each: imports, caches, token
            delete(boot()[2])
        boots: dict[str, list[float]] = {kind: [] for kind in kinds}
        calls: dict[str, list[float]] = {kind: [] for kind in kinds}
        for _ in range(args.boots):
            for kind, (boot, delete) in kinds.items():
                took, call, ident = boot()
                boots[kind].append(took)
                calls[kind].append(call)
                delete(ident)
        figures["load_average_at_end"] = os.getloadavg()
        for kind in kinds:
            median, p90 = statistics.median(boots[kind]), percentile(boots[kind], 0.9)
            call = statistics.median(calls[kind])
            print(f"{kind:11} to running: median {median * 1000:6.0f} ms, p90 {p90 * 1000:6.0f} ms"
                  f"  (the create call alone: median {call * 1000:4.0f} ms)")
            figures[kind] = {"median_s": median, "p90_s": p90, "create_call_median_s": call,
                             "samples_s": boots[kind]}
        print(f"load average {figures['load_average_at_start']} at start, "
              f"{figures['load_average_at_end']} at end")
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(json.dumps(figures, indent=2))
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
