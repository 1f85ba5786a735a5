"""Guest networking figures: TCP throughput and ICMP latency between real qemu guests on one tenant
network (same simulated host; different hosts, over VXLAN), beside a baseline of two plain network
namespaces on a Linux bridge measured in the same run; server create to SSH on a floating IP; and
how long a security-group rule change takes to reach a running guest.

    sudo .venv/bin/python -m bench.net_bench [--reps 3] [--seconds 5]

Needs root (simulated hosts are namespaces) and var/guest/kumo-tiny.qcow2 (make image). The stack
is tests/e2e/multihost.py's: three simulated hosts with the Linux bridge data plane, guests under
qemu (TCG when the machine has no KVM, so guest figures are CPU-bound). At most three guests run at
once. Writes artifacts/bench/net_bench.json.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Self

import libvirt

from simhosts.hosts import outside_ns
from tests.e2e.multihost import BOOT_TIMEOUT, Cloud, V, wait_for_text
from tests.e2e.test_guest_networking import Net
from tests.stack import ROOT, Stack

IMAGE = ROOT / "var" / "guest" / "kumo-tiny.qcow2"
OUT = ROOT / "artifacts" / "bench" / "net_bench.json"
PORT = 5001
BLOCK = 64 * 1024
PINGS = 20
SUBNET = "192.168.77"
SENDER, SAME_HOST, OTHER_HOST = f"{SUBNET}.11", f"{SUBNET}.12", f"{SUBNET}.13"
# The receiver: one connection after another (-ll), each read to its end by dd. Not
# `nc -l > /dev/null`: busybox nc drops the connection once its own stdin ends, and a background
# job's stdin is /dev/null, so the transfer would stop after a few kB.
RECEIVE = f"nc -ll -p {PORT} -e dd of=/dev/null bs=64k"
LISTENER = f"""#!/bin/sh
{RECEIVE} </dev/null >/dev/null 2>&1 &
echo "NETBENCH listening"
"""
# {bb} is "busybox " on the machine (its own tools may differ), "" in a guest (busybox only).
SEND = "{bb}time {bb}sh -c '{bb}dd if=/dev/zero bs={bs} count={count} 2>/dev/null | {bb}nc -w 2 {ip} {port}'"


def real_seconds(text: str) -> float:
    """The `real` line of busybox time: 'real\t0m 5.01s'."""
    match = re.search(r"real\s+(?:(\d+)m\s*)?([\d.]+)s", text)
    if not match:
        raise RuntimeError(f"no time in {text[-400:]!r}")
    return int(match.group(1) or 0) * 60 + float(match.group(2))


def round_trip(text: str) -> dict:
    """busybox ping's summary: loss and min/avg/max round trip in ms."""
    loss = re.search(r"(\d+)% packet loss", text)
    rtt = re.search(r"round-trip min/avg/max = ([\d.]+)/([\d.]+)/([\d.]+) ms", text)
    if not (loss and rtt):
        raise RuntimeError(f"no ping summary in {text[-400:]!r}")
    return {"min_ms": float(rtt.group(1)), "avg_ms": float(rtt.group(2)),
            "max_ms": float(rtt.group(3)), "loss_pct": int(loss.group(1))}


def mb_per_s(count: int, seconds: float) -> float:
    return round(count * BLOCK / seconds / 1e6, 1)


def run(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


def wait_until(check: Callable[[], bool], what: str, timeout: float) -> float:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.2)
    return time.monotonic() - started


class Baseline:
    """Two namespaces joined by veths to a bridge in a third (all the bench's own, so the
    machine's namespace is never touched): the same transfer and ping, with no qemu and no VXLAN."""

    def __init__(self) -> None:
        tag = f"netbench{os.getpid()}"
        self.br, self.a, self.b = f"{tag}-br", f"{tag}-a", f"{tag}-b"
        self.addr = {self.a: "10.231.0.1", self.b: "10.231.0.2"}

    def __enter__(self) -> Self:
        steps = [["ip", "netns", "add", ns] for ns in (self.br, self.a, self.b)]
        steps += [["ip", "-n", self.br, "link", "add", "br0", "type", "bridge"],
                  ["ip", "-n", self.br, "link", "set", "br0", "up"]]
        for ns, port in ((self.a, "pa"), (self.b, "pb")):
            steps += [["ip", "-n", self.br, "link", "add", port, "type", "veth", "peer", "name",
                       "eth0", "netns", ns],
                      ["ip", "-n", self.br, "link", "set", port, "master", "br0", "up"],
                      ["ip", "-n", ns, "addr", "add", f"{self.addr[ns]}/24", "dev", "eth0"],
                      ["ip", "-n", ns, "link", "set", "eth0", "up"],
                      ["ip", "-n", ns, "link", "set", "lo", "up"]]
        try:
            for step in steps:
                subprocess.run(step, check=True, capture_output=True)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        for ns in (self.a, self.b, self.br):
            run("ip", "netns", "del", ns)

    def transfer(self, count: int) -> float:
        receiver = subprocess.Popen(["ip", "netns", "exec", self.a, "busybox", *RECEIVE.split()],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.5)
            command = SEND.format(bb="busybox ", bs=BLOCK, count=count, ip=self.addr[self.a],
                                  port=PORT)
            sent = run("ip", "netns", "exec", self.b, "sh", "-c", command, timeout=120)
            if sent.returncode != 0:
                raise RuntimeError(f"baseline transfer failed: {sent.stderr}")
            return real_seconds(sent.stderr)
        finally:
            receiver.terminate()
            receiver.wait(10)

    def ping(self) -> dict:
        return round_trip(run("ip", "netns", "exec", self.b, "busybox", "ping", "-c", str(PINGS),
                              "-i", "0.2", self.addr[self.a]).stdout)


class Tenant:
    """One tenant network behind a router to `public`, a security group of the bench's own (ICMP,
    SSH and the test port from anywhere), and a key pair; guests booted onto chosen hosts."""

    def __init__(self, cloud: Cloud, key: Path) -> None:
        self.cloud, self.net, self.key = cloud, Net(cloud), key
        self.servers: dict[str, str] = {}
        self.floating: dict[str, dict] = {}
        self.made: list[tuple[str, str]] = []

    def make(self, kind: str, body: dict) -> dict:
        found = self.net.create(kind, body)
        self.made.append((kind, found["id"]))
        return found

    def setup(self) -> None:
        api = self.cloud.api
        response = api.post(f"{V}/os-keypairs", {"keypair": {
            "name": "netbench", "public_key": self.key.with_suffix(".pub").read_text().strip()}})
        if response.status_code not in (200, 201):
            raise RuntimeError(response.text)
        self.public = self.net.one("network", name="public")
        self.network = self.make("network", {"name": "netbench"})
        subnet = self.make("subnet", {"network_id": self.network["id"], "ip_version": 4,
                                      "cidr": f"{SUBNET}.0/24", "gateway_ip": f"{SUBNET}.1"})
        self.group = self.make("security_group", {"name": "netbench"})
        self.icmp = self.rule({"protocol": "icmp"})
        for port in (22, PORT):
            self.rule({"protocol": "tcp", "port_range_min": port, "port_range_max": port})
        self.router = self.make("router", {"name": "netbench", "external_gateway_info": {
            "network_id": self.public["id"]}})
        self.net.router_interface(self.router["id"], subnet["id"])
        self.subnet = subnet

    def rule(self, body: dict) -> dict:
        return self.net.create("security_group_rule", {
            "security_group_id": self.group["id"], "direction": "ingress", "ethertype": "IPv4",
            "remote_ip_prefix": "0.0.0.0/0", **body})

    def boot(self, name: str, host: str, address: str, user_data: str = "") -> str:
        server: dict = {"name": name, "imageRef": self.cloud.image, "flavorRef": "1",
                        "key_name": "netbench", "availability_zone": f"nova:{host}",
                        "networks": [{"uuid": self.network["id"], "fixed_ip": address}],
                        "security_groups": [{"name": "default"}, {"name": "netbench"}]}
        if user_data:
            server["user_data"] = base64.b64encode(user_data.encode()).decode()
        created = self.cloud.api.post(f"{V}/servers", {"server": server})
        if created.status_code != 202:
            raise RuntimeError(created.text)
        server_id = created.json()["server"]["id"]
        self.servers[name] = server_id
        return server_id

    def associate(self, name: str) -> str:
        port = self.net.one("port", device_id=self.servers[name])
        self.floating[name] = self.net.create("floatingip", {
            "floating_network_id": self.public["id"], "port_id": port["id"]})
        return self.floating[name]["floating_ip_address"]

    def remove(self, name: str) -> None:
        if name in self.floating:
            self.net.delete("floatingip", self.floating.pop(name)["id"])
        if name in self.servers:
            self.cloud.delete(self.servers.pop(name))

    def teardown(self) -> None:
        for name in list(self.servers):
            self.remove(name)
        if getattr(self, "subnet", None):
            self.cloud.api.put(f"/network/v2.0/routers/{self.router['id']}/remove_router_interface",
                               {"subnet_id": self.subnet["id"]})
        for kind, ident in reversed(self.made):
            if kind != "security_group_rule":
                self.net.delete(kind, ident)
        self.cloud.api.delete(f"{V}/os-keypairs/netbench")

    def outside(self, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return run("ip", "netns", "exec", outside_ns(self.cloud.stack.host_tag), *argv,
                   timeout=timeout)

    def ssh(self, fip: str, command: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return self.outside("ssh", "-i", str(self.key), "-o", "StrictHostKeyChecking=no",
                            "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
                            "-o", "ConnectTimeout=3", "-o", "BatchMode=yes", f"root@{fip}",
                            command, timeout=timeout)

    def pings(self, fip: str) -> bool:
        return self.outside("busybox", "ping", "-c1", "-W1", fip, timeout=10).returncode == 0

    def flips(self, fip: str, answered: bool, started: float, timeout: float = 30) -> float:
        """Seconds from `started` to the sending of the first ping whose outcome is `answered`.
        A ping leaves every 0.2 s, each in its own process: an unanswered one takes busybox's
        whole second (-W is whole seconds), which would otherwise be the resolution."""
        sent: list[tuple[float, subprocess.Popen]] = []
        try:
            while time.monotonic() - started < timeout:
                sent.append((time.monotonic(), subprocess.Popen(
                    ["ip", "netns", "exec", outside_ns(self.cloud.stack.host_tag), "busybox",
                     "ping", "-c1", "-W1", fip],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)))
                time.sleep(0.2)
                for at, proc in sent:  # oldest first: an earlier ping may not be back yet
                    code = proc.poll()
                    if code is None:
                        break
                    if (code == 0) == answered:
                        return at - started
            raise RuntimeError(f"ping {fip} never {'answered' if answered else 'unanswered'}")
        finally:
            for _, proc in sent:
                if proc.poll() is None:
                    proc.kill()
                proc.wait()

    def reaches(self, fip: str, target: str) -> bool:
        return self.ssh(fip, f"ping -c1 -W1 {target}", timeout=20).returncode == 0

    def send(self, fip: str, target: str, count: int) -> float:
        for _ in range(3):  # a connection refused while the receiver starts
            sent = self.ssh(fip, SEND.format(bb="", bs=BLOCK, count=count, ip=target, port=PORT))
            if sent.returncode == 0:
                return real_seconds(sent.stderr)
            time.sleep(1)
        raise RuntimeError(f"transfer to {target} failed: {sent.stdout}{sent.stderr}")


def boot_to_ssh(tenant: Tenant, name: str) -> tuple[float, str]:
    started = time.monotonic()
    tenant.boot(name, "compute-1", SENDER)
    fip = tenant.associate(name)
    wait_until(lambda: tenant.ssh(fip, "hostname", timeout=15).stdout.strip() == name,
               f"ssh root@{fip}", BOOT_TIMEOUT)
    return time.monotonic() - started, fip


def sized(measure: Callable[[int], float], seconds: float) -> tuple[int, float]:
    """A short transfer first, then one sized to last about `seconds`: (blocks, seconds)."""
    probe = 160
    rate = probe / measure(probe)
    count = max(probe, min(40000, int(rate * seconds)))
    return count, measure(count)


def accel(cloud: Cloud, host: str, server_id: str) -> str:
    """How qemu runs the guest: kvm, or tcg (libvirt's domain type 'qemu', CPU emulated)."""
    conn = libvirt.open(cloud.hosts[host].uri)
    try:
        xml = conn.lookupByUUIDString(server_id).XMLDesc(0)
    finally:
        conn.close()
    found = re.search(r"<domain type=['\"](\w+)", xml)
    return "kvm" if found and found.group(1) == "kvm" else "tcg"


def load() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def bench(cloud: Cloud, key: Path, reps: int, seconds: float) -> dict:
    figures: dict = {"machine": {"cpus": os.cpu_count(), "load_at_start": load()}}
    tenant = Tenant(cloud, key)
    try:
        tenant.setup()
        # Boot to SSH, one guest at a time (the last one stays as the sender).
        ssh_times = []
        for rep in range(reps):
            if rep:
                tenant.remove("nb-sender")
            seconds_to_ssh, fip = boot_to_ssh(tenant, "nb-sender")
            ssh_times.append(round(seconds_to_ssh, 1))
            print(f"  boot to SSH #{rep + 1}: {seconds_to_ssh:.1f} s", flush=True)
        figures["create_to_ssh_s"] = ssh_times
        figures["machine"]["guest_accel"] = accel(cloud, "compute-1", tenant.servers["nb-sender"])

        # Receivers: one beside the sender, one on another host (VXLAN between them).
        same = tenant.boot("nb-same", "compute-1", SAME_HOST, LISTENER)
        other = tenant.boot("nb-other", "compute-2", OTHER_HOST, LISTENER)
        cloud.active(same, other)
        wait_for_text(cloud.console_log("compute-1", same), "NETBENCH listening")
        wait_for_text(cloud.console_log("compute-2", other), "NETBENCH listening")
        for label, target in (("same_host", SAME_HOST), ("other_host", OTHER_HOST)):
            wait_until(partial(tenant.reaches, fip, target), f"{target} from the sender", 60)
            count, took = sized(partial(tenant.send, fip, target), seconds)
            rtt = round_trip(tenant.ssh(fip, f"ping -c {PINGS} -i 0.2 {target}").stdout)
            figures[label] = {"bytes": count * BLOCK, "seconds": round(took, 2),
                              "mb_per_s": mb_per_s(count, took), "ping": rtt}
            print(f"  {label}: {figures[label]}", flush=True)

        # The baseline, in the same run, the same way: a probe, then a transfer of ~`seconds`.
        with Baseline() as baseline:
            count, took = sized(baseline.transfer, seconds)
            figures["baseline_bridge"] = {"bytes": count * BLOCK, "seconds": round(took, 2),
                                          "mb_per_s": mb_per_s(count, took),
                                          "ping": baseline.ping()}

        # Security-group propagation seen from outside: the ICMP rule out, then back.
        wait_until(lambda: tenant.pings(fip), f"ping {fip}", 30)
        removed, added = [], []
        for _ in range(reps):
            started = time.monotonic()
            tenant.net.delete("security_group_rule", tenant.icmp["id"])
            removed.append(round(tenant.flips(fip, False, started), 1))
            started = time.monotonic()
            tenant.icmp = tenant.rule({"protocol": "icmp"})
            added.append(round(tenant.flips(fip, True, started), 1))
        figures["sg_rule_removed_to_ping_stops_s"] = removed
        figures["sg_rule_added_to_ping_returns_s"] = added
    finally:
        figures["machine"]["load_at_end"] = load()
        tenant.teardown()
    return figures


def table(figures: dict) -> str:
    rows = [("path", "MB/s", "bytes", "s", "ping min/avg/max ms", "loss")]
    for label in ("baseline_bridge", "same_host", "other_host"):
        f = figures.get(label)
        if f:
            p = f["ping"]
            rows.append((label, f"{f['mb_per_s']}", f"{f['bytes']}", f"{f['seconds']:.2f}",
                         f"{p['min_ms']}/{p['avg_ms']}/{p['max_ms']}", f"{p['loss_pct']}%"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    for key in ("create_to_ssh_s", "sg_rule_removed_to_ping_stops_s",
                "sg_rule_added_to_ping_returns_s"):
        if key in figures:
            values = figures[key]
            lines.append(f"{key}: {values} (median {statistics.median(values)})")
    lines.append(f"machine: {figures['machine']}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3, help="boots to SSH and rule changes")
    parser.add_argument("--seconds", type=float, default=5, help="length of each transfer")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("net_bench needs root (simulated hosts and namespaces)")
    if not IMAGE.exists():
        raise SystemExit(f"{IMAGE} is missing: make image")

    stack = Stack("netbench", agents=[], simulated_hosts=3, schedulers=1, broker="rabbitmq",
                  extra_env={"KUMO_TASK_DEADLINES": "scheduling=30,spawning=180,default=120"})
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp, stack.running():
        key = Path(tmp) / "key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
                       check=True)
        api = stack.client(version="2.60")
        cloud = Cloud(stack, api, api.upload_image("kumo-tiny", IMAGE.read_bytes()))
        figures = bench(cloud, key, args.reps, args.seconds)
    figures["wall_s"] = round(time.monotonic() - started, 1)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(figures, indent=2) + "\n")
    print(table(figures))
    print(f"written to {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
