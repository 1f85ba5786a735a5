"""Guest networking, end to end, on the shared many-hosts stack (tests/e2e/multihost.py): tenant
networks made through the Network API carry real packets between real qemu guests on different
simulated hosts, and the outside world (the stack's outside namespace, `kumo-ext` under
`make run`) reaches a guest only through its floating IP and only where its security groups allow.

Each guest runs a probe script (user data) that pings its targets every second and prints one
line per try on its serial console ("PROBE <name> ok|fail"), so what the guest itself sees is
what the test asserts. At most three guests at once.

Figures (boot to SSH on a floating IP, security-group rule propagation) go to the shared stack's
figures.json.
"""

from __future__ import annotations

import base64
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import simhosts
from simhosts.hosts import outside_ns
from tests.e2e.multihost import BOOT_TIMEOUT, Cloud, V, figure, wait_for_text, wait_until

pytestmark = pytest.mark.e2e

N = "/network/v2.0"
NET1, NET2 = "192.168.50", "192.168.60"
A, B, C = f"{NET1}.11", f"{NET1}.12", f"{NET2}.13"
PAIR, SPOOF = f"{NET1}.98", f"{NET1}.99"
OUTSIDE = simhosts.hosts.EXTERNAL_GATEWAY.split("/")[0]  # the outside namespace's address


def probe_script(targets: dict[str, str], spoof: bool = False) -> str:
    """A guest's user data: ping each target (and, with `spoof`, from a permitted extra address
    and from a forged one) once a second, forever, printing the result on the serial console."""
    lines = ["#!/bin/sh", "sleep 2"]
    if spoof:
        lines += [f"ip addr add {PAIR}/32 dev eth0", f"ip addr add {SPOOF}/32 dev eth0"]
    lines += ["while :; do"]
    for name, address in targets.items():
        lines.append(f"  if ping -c1 -W1 {address} >/dev/null 2>&1; then echo \"PROBE {name} ok\";"
                     f" else echo \"PROBE {name} fail\"; fi")
    if spoof:
        for name, source in (("pair", PAIR), ("spoof", SPOOF)):
            lines.append(f"  if ping -c1 -W1 -I {source} {A} >/dev/null 2>&1; then"
                         f" echo \"PROBE {name} ok\"; else echo \"PROBE {name} fail\"; fi")
    lines += ["  sleep 1", "done", ""]
    return "\n".join(lines)


def _path(kind: str) -> str:
    """The collection of a resource: security_group_rule -> security-group-rules."""
    return kind.replace("_", "-") + "s"


class Net:
    """The Network API, as the test's (admin) user."""

    def __init__(self, cloud: Cloud) -> None:
        self.api = cloud.api

    def create(self, kind: str, body: dict) -> dict:
        response = self.api.post(f"{N}/{_path(kind)}", {kind: body})
        assert response.status_code == 201, response.text
        return response.json()[kind]

    def delete(self, kind: str, ident: str) -> None:
        response = self.api.delete(f"{N}/{_path(kind)}/{ident}")
        assert response.status_code in (204, 404), response.text

    def one(self, kind: str, **filters: str) -> dict:
        query = "&".join(f"{k}={v}" for k, v in filters.items())
        (found,) = self.api.get(f"{N}/{_path(kind)}?{query}").json()[f"{kind}s"]
        return found

    def router_interface(self, router: str, subnet: str, verb: str = "add") -> None:
        response = self.api.put(f"{N}/routers/{router}/{verb}_router_interface",
                                {"subnet_id": subnet})
        assert response.status_code == 200, response.text


class Probe:
    """The PROBE lines of one guest's console log."""

    def __init__(self, log: Path) -> None:
        self.log = log

    def results(self, name: str) -> list[str]:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return re.findall(rf"PROBE {name} (ok|fail)", text)

    def wait(self, name: str, result: str, timeout: float = 60, consecutive: int = 2) -> float:
        """Seconds until the probe printed `result` `consecutive` times in a row."""
        started = time.monotonic()
        while True:
            seen = self.results(name)
            if len(seen) >= consecutive and set(seen[-consecutive:]) == {result}:
                return time.monotonic() - started
            assert time.monotonic() - started < timeout, \
                f"PROBE {name} never {result} in {self.log}: last {seen[-5:]}"
            time.sleep(0.3)


@pytest.fixture(scope="module")
def net(multihost: Cloud) -> Iterator[Net]:
    yield Net(multihost)


def _boot(cloud: Cloud, name: str, host: str, network: str, fixed_ip: str, *, key: str = "",
          groups: tuple[str, ...] = ("default",), user_data: str = "") -> str:
    server: dict = {
        "name": name, "imageRef": cloud.image, "flavorRef": "1",
        "networks": [{"uuid": network, "fixed_ip": fixed_ip}],
        "availability_zone": f"nova:{host}",
        "security_groups": [{"name": g} for g in groups],
    }
    if key:
        server["key_name"] = key
    if user_data:
        server["user_data"] = base64.b64encode(user_data.encode()).decode()
    created = cloud.api.post(f"{V}/servers", {"server": server})
    assert created.status_code == 202, created.text
    return created.json()["server"]["id"]


def _outside(cloud: Cloud, *argv: str, timeout: float = 15) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", outside_ns(cloud.stack.host_tag), *argv],
                          capture_output=True, text=True, timeout=timeout, check=False)


def _pings(cloud: Cloud, address: str) -> bool:
    # busybox: the machine has no iputils (scripts/setup.sh installs busybox-static).
    return _outside(cloud, "busybox", "ping", "-c1", "-W1", address).returncode == 0


def test_tenant_networks_routers_floating_ips_and_security_groups_carry_real_packets(
        multihost: Cloud, net: Net, tmp_path: Path) -> None:
    cloud = multihost
    key = tmp_path / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    response = cloud.api.post(f"{V}/os-keypairs", {"keypair": {
        "name": "netkey", "public_key": (tmp_path / "key.pub").read_text().strip()}})
    assert response.status_code in (200, 201), response.text

    public = net.one("network", name="public")
    net1 = net.create("network", {"name": "net1"})
    sub1 = net.create("subnet", {"network_id": net1["id"], "cidr": f"{NET1}.0/24",
                                 "ip_version": 4, "gateway_ip": f"{NET1}.1"})
    net2 = net.create("network", {"name": "net2"})
    sub2 = net.create("subnet", {"network_id": net2["id"], "cidr": f"{NET2}.0/24",
                                 "ip_version": 4, "gateway_ip": f"{NET2}.1"})
    edge = net.create("security_group", {"name": "edge"})
    icmp = net.create("security_group_rule", {
        "security_group_id": edge["id"], "direction": "ingress", "ethertype": "IPv4",
        "protocol": "icmp", "remote_ip_prefix": "0.0.0.0/0"})
    net.create("security_group_rule", {
        "security_group_id": edge["id"], "direction": "ingress", "ethertype": "IPv4",
        "protocol": "tcp", "port_range_min": 22, "port_range_max": 22,
        "remote_ip_prefix": "0.0.0.0/0"})
    router = net.create("router", {"name": "r1",
                                   "external_gateway_info": {"network_id": public["id"]}})
    servers: list[str] = []
    floating: dict = {}
    try:
        started = time.monotonic()
        a = _boot(cloud, "net-a", "compute-1", net1["id"], A, key="netkey",
                  groups=("default", "edge"))
        servers.append(a)
        b = _boot(cloud, "net-b", "compute-2", net1["id"], B,
                  user_data=probe_script({"b-a": A, "b-out": OUTSIDE}, spoof=True))
        servers.append(b)
        c = _boot(cloud, "net-c", "compute-3", net2["id"], C, user_data=probe_script({"c-a": A}))
        servers.append(c)
        port_a = net.one("port", device_id=a)
        port_b = net.one("port", device_id=b)
        # b may also send from PAIR (allowed address pair), never from SPOOF.
        response = cloud.api.put(f"{N}/ports/{port_b['id']}", {"port": {
            "allowed_address_pairs": [{"ip_address": PAIR}]}})
        assert response.status_code == 200, response.text
        net.router_interface(router["id"], sub1["id"])
        floating = net.create("floatingip", {"floating_network_id": public["id"],
                                             "port_id": port_a["id"]})
        fip = floating["floating_ip_address"]
        cloud.active(*servers)

        # DHCP gave every guest exactly the address IPAM gave its port.
        for server_id, host, address in ((a, "compute-1", A), (b, "compute-2", B),
                                         (c, "compute-3", C)):
            text = wait_for_text(cloud.console_log(host, server_id), "DHCP bound eth0")
            assert re.search(rf"DHCP bound eth0 ip={re.escape(address)}\b", text), text[-800:]

        # SSH from the outside through the floating IP, with the key injected at boot.
        def ssh_hostname() -> bool:
            result = _outside(cloud, "ssh", "-i", str(key), "-o", "StrictHostKeyChecking=no",
                              "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=3",
                              "-o", "BatchMode=yes", f"root@{fip}", "hostname")
            return result.returncode == 0 and result.stdout.strip() == "net-a"

        try:
            wait_until(ssh_hostname, f"ssh root@{fip} hostname = net-a", timeout=BOOT_TIMEOUT)
        except AssertionError:
            print(_diagnosis(cloud, fip))
            raise
        figure("server create to SSH on its floating IP (s)",
               round(time.monotonic() - started, 1))

        # Same network, different hosts: b reaches a. Another network: c does not, until the
        # router joins the two subnets.
        probe_b = Probe(cloud.console_log("compute-2", b))
        probe_c = Probe(cloud.console_log("compute-3", c))
        probe_b.wait("b-a", "ok")
        # A guest without a floating IP reaches the outside through its router's SNAT.
        probe_b.wait("b-out", "ok")
        probe_c.wait("c-a", "fail", consecutive=3)
        net.router_interface(router["id"], sub2["id"])
        probe_c.wait("c-a", "ok")

        # A NIC plugged into the running guest (openstack server add network) gets its lease.
        attached = cloud.api.post(f"{V}/servers/{c}/os-interface",
                                  {"interfaceAttachment": {"net_id": net1["id"]}})
        assert attached.status_code == 200, attached.text
        extra = attached.json()["interfaceAttachment"]
        extra_ip = extra["fixed_ips"][0]["ip_address"]
        wait_for_text(cloud.console_log("compute-3", c), f"DHCP bound eth1 ip={extra_ip} ")
        detached = cloud.api.delete(f"{V}/servers/{c}/os-interface/{extra['port_id']}")
        assert detached.status_code == 202, detached.text

        # Port security: a source address the port was not given is dropped; an allowed address
        # pair is not.
        probe_b.wait("pair", "ok")
        probe_b.wait("spoof", "fail", consecutive=3)
        assert "ok" not in probe_b.results("spoof")

        # The outside reaches a only where its groups allow: ICMP rule removed, ping stops
        # within 10 s; added again, it is back.
        assert wait_until(lambda: _pings(cloud, fip), "ping of the floating IP", 30) < 30
        net.delete("security_group_rule", icmp["id"])
        gone = wait_until(lambda: not _pings(cloud, fip), "ping to stop", timeout=10)
        figure("security group rule removal reaching a running guest (s)", round(gone, 1))
        net.create("security_group_rule", {
            "security_group_id": edge["id"], "direction": "ingress", "ethertype": "IPv4",
            "protocol": "icmp", "remote_ip_prefix": "0.0.0.0/0"})
        back = wait_until(lambda: _pings(cloud, fip), "ping to come back", timeout=10)
        figure("security group rule addition reaching a running guest (s)", round(back, 1))
    finally:
        if floating:
            net.delete("floatingip", floating["id"])
        cloud.delete(*servers)
        for subnet in (sub1, sub2):
            cloud.api.put(f"{N}/routers/{router['id']}/remove_router_interface",
                          {"subnet_id": subnet["id"]})
        net.delete("router", router["id"])
        net.delete("security_group", edge["id"])
        for network in (net1, net2):
            net.delete("network", network["id"])
        cloud.api.delete(f"{V}/os-keypairs/netkey")

    # Nothing of it is left on any host: no guest tap, no bridge, VXLAN device or DHCP server
    # of its networks, no leg of its router. (Bootstrap's router1 keeps its own on its host.)
    mine = [f"brq{n['id'][:11]}" for n in (net1, net2)] + \
        [f"vxlan-{n['provider:segmentation_id']}" for n in (net1, net2)] + \
        [f"dhcp{n['id'][:11]}" for n in (net1, net2)]
    for host in cloud.hosts.values():
        deadline = time.monotonic() + 30
        while (left := _leftovers(host, mine)) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not left, f"{host.name} still has {left}"
        assert not (host.dir / "instances" / "_network" / "routers" / router["id"]).exists()


def _leftovers(host: simhosts.SimHost, mine: list[str]) -> list[str]:
    out = subprocess.run(["ip", "-n", host.netns, "-o", "link", "show"], capture_output=True,
                         text=True, check=False).stdout
    names = [line.split(":")[1].strip().split("@")[0] for line in out.splitlines()]
    return [n for n in names if n in mine or n.startswith("tap")]


def _diagnosis(cloud: Cloud, fip: str) -> str:
    """What the routers and the outside see, for a failure's report."""
    lines = [f"ping {fip}: {_pings(cloud, fip)}",
             _outside(cloud, "ip", "neigh").stdout]
    for host in cloud.hosts.values():
        for pid_file in (host.dir / "instances" / "_network" / "routers").glob("*/pid"):
            pid = pid_file.read_text().strip()
            for argv in (["ip", "-br", "addr"], ["ip", "route"], ["iptables-legacy-save", "-t",
                                                                    "nat"]):
                out = subprocess.run(["nsenter", f"--net=/proc/{pid}/ns/net", *argv],
                                     capture_output=True, text=True, check=False)
                lines.append(f"{host.name} router {pid_file.parent.name} {argv[0]}:\n"
                             f"{out.stdout}{out.stderr}")
    return "\n".join(lines)
