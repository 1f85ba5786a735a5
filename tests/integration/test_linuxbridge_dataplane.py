"""The Linux bridge data plane with real packets (compute_agent/network/linuxbridge.py).

The test makes its own namespaces and nothing else: a "host" where LinuxBridgeDriver runs (its
--netns), and two "guests", each joined to the host by a veth whose host end is named as the tap
libvirt would make for the port (tap<port11>) and put into the port's bridge, as libvirt does.
Both ports are on one VXLAN network; the guests get their addresses by DHCP from the driver's
dnsmasq, ping each other, lose and regain ping as a refresh takes the ICMP rule away and back,
cannot send from an address not theirs; and unplug and cleanup leave nothing behind.

Skipped only when not root or without busybox, dnsmasq or conntrack; CI (KUMO_NO_SKIPS) turns that into a
failure.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from compute_agent import messages as msg
from compute_agent.network.base import bridge_name, tap_name, vxlan_name
from compute_agent.network.dhcp import host_leg
from compute_agent.network.linuxbridge import LinuxBridgeDriver
from tests.integration.dataplane import (
    BUSYBOX,
    NEEDS_BUSYBOX,
    NEEDS_CONNTRACK,
    NEEDS_DNSMASQ,
    NEEDS_ROOT,
)

pytestmark = [NEEDS_ROOT, NEEDS_BUSYBOX, NEEDS_DNSMASQ, NEEDS_CONNTRACK]

NETWORK = "5a1b2c3d-0000-4000-8000-00000000e001"
PORT_A = "a0a0a0a0-1111-4000-8000-000000000001"
PORT_B = "b0b0b0b0-2222-4000-8000-000000000002"
VNI = 4242
INSTANCE = "1b5f0000-0000-4000-8000-0000000000aa"
DHCP_IP = "10.50.0.2"
ICMP_IN = msg.SecurityRule(direction="ingress", protocol="icmp")
ANY_OUT = msg.SecurityRule(direction="egress")


def sh(*argv: str, check: bool = True, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=timeout)


def in_ns(ns: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return sh("ip", "netns", "exec", ns, *argv, check=check)


def pings(ns: str, address: str, source: str = "") -> bool:
    extra = ["-I", source] if source else []
    return in_ns(ns, BUSYBOX, "ping", "-c", "1", "-W", "1", *extra, address,
                 check=False).returncode == 0


def eventually(condition: Callable[[], bool], seconds: float = 8) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.3)
    return condition()


def port(port_id: str, mac: str, ip: str, name: str,
         rules: list[msg.SecurityRule]) -> msg.NetworkInfo:
    return msg.NetworkInfo(
        network_id=NETWORK, network_name="l2t", port_id=port_id, mac_address=mac,
        ip_address=ip, network_type="vxlan", segmentation_id=VNI, mtu=1450,
        subnets=[msg.SubnetInfo(subnet_id="s1", cidr="10.50.0.0/24", gateway_ip="10.50.0.1",
                                dns_nameservers=["10.50.0.53"])],
        rules=rules, hostname=name, dhcp_ip=DHCP_IP, dhcp_mac="fa:16:3e:00:00:02",
        peers=["192.0.2.1", "192.0.2.99"],
    )


@dataclass
class World:
    host: str
    guests: dict[str, str]  # port id -> guest namespace
    state_dir: Path
    script: Path

    def driver(self) -> LinuxBridgeDriver:
        return LinuxBridgeDriver(state_dir=self.state_dir, netns=self.host, tunnel_ip="192.0.2.1")

    def attach(self, port: msg.NetworkInfo) -> None:
        """What libvirt does when the domain starts: the tap, in the port's bridge."""
        guest, tap = self.guests[port.port_id], tap_name(port.port_id)
        sh("ip", "-n", self.host, "link", "add", tap, "type", "veth",
           "peer", "name", "eth0", "netns", guest)
        sh("ip", "-n", self.host, "link", "set", tap, "master", bridge_name(port.network_id),
           "up")
        in_ns(guest, "ip", "link", "set", "eth0", "address", port.mac_address)
        in_ns(guest, "ip", "link", "set", "eth0", "up")

    def dhcp(self, port_id: str) -> str:
        """Run udhcpc in the guest; the address it was given and applied."""
        guest = self.guests[port_id]
        result = in_ns(guest, BUSYBOX, "udhcpc", "-i", "eth0", "-n", "-q", "-f", "-t", "5",
                       "-T", "1", "-s", str(self.script), check=False)
        assert result.returncode == 0, result.stdout + result.stderr
        return in_ns(guest, "ip", "-o", "-4", "addr", "show", "dev", "eth0").stdout

    def host_links(self) -> set[str]:
        out = in_ns(self.host, "ip", "-o", "link", "show").stdout
        return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}

    def kumo_rules(self) -> str:
        text = in_ns(self.host, "iptables-legacy-save").stdout
        text += in_ns(self.host, "ebtables-save", check=False).stdout
        return "\n".join(line for line in text.splitlines() if "kumo" in line)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    tag = uuid.uuid4().hex[:6]
    host = f"kumo-l2t-{tag}"
    guests = {PORT_A: f"kumo-l2t-{tag}-a", PORT_B: f"kumo-l2t-{tag}-b"}
    script = tmp_path / "udhcpc.sh"
    script.write_text('#!/bin/sh\n[ "$1" = bound ] && ip addr add "$ip/$mask" dev "$interface"\n'
                      "exit 0\n")
    script.chmod(0o755)
    w = World(host, guests, tmp_path / "network", script)
    try:
        for ns in (host, *guests.values()):
            sh("ip", "netns", "add", ns)
            in_ns(ns, "ip", "link", "set", "lo", "up")
        yield w
    finally:
        try:
            w.driver().cleanup()
        finally:
            for ns in (*guests.values(), host):
                sh("ip", "netns", "del", ns, check=False)


def test_two_guests_dhcp_rules_spoofing_and_cleanup(world: World) -> None:
    a = port(PORT_A, "52:54:00:50:00:11", "10.50.0.11", "guest-a", [ICMP_IN, ANY_OUT])
    b = port(PORT_B, "52:54:00:50:00:12", "10.50.0.12", "guest_b!", [ICMP_IN, ANY_OUT])
    driver = world.driver()
    driver.plug(INSTANCE, [a, b])
    driver.plug(INSTANCE, [a, b])  # a repeated plug changes nothing
    bridge, vxlan = bridge_name(NETWORK), vxlan_name(VNI)
    assert {bridge, vxlan, host_leg(NETWORK)} <= world.host_links()
    fdb = in_ns(world.host, "bridge", "fdb", "show", "dev", vxlan).stdout
    assert "dst 192.0.2.99" in fdb and "dst 192.0.2.1 " not in fdb  # peers, not itself
    world.attach(a)
    world.attach(b)

    # DHCP gives each guest exactly its port's address.
    assert "10.50.0.11/24" in world.dhcp(PORT_A)
    assert "10.50.0.12/24" in world.dhcp(PORT_B)
    assert eventually(lambda: pings(world.guests[PORT_A], "10.50.0.12"))
    assert pings(world.guests[PORT_B], "10.50.0.11")
    # The network's connections are tracked in its own zone (overlapping CIDRs never share one).
    tracked = in_ns(world.host, "conntrack", "-L", "-p", "icmp", check=False).stdout
    assert "src=10.50.0.11 dst=10.50.0.12" in tracked and "zone=1" in tracked, tracked

    # The ICMP rule of B goes: ping to B stops (even a ping that was flowing); B still pings out
    # (its replies are ESTABLISHED).
    no_icmp = replace(b, rules=[ANY_OUT])
    driver.refresh(msg.PortsRefresh(request_id="r1", ports=[no_icmp]))
    assert eventually(lambda: not pings(world.guests[PORT_A], "10.50.0.12"), 4)
    assert not pings(world.guests[PORT_A], "10.50.0.12")
    assert pings(world.guests[PORT_B], "10.50.0.11")
    # ... and comes back.
    driver.refresh(msg.PortsRefresh(request_id="r2", ports=[b]))
    assert eventually(lambda: pings(world.guests[PORT_A], "10.50.0.12"), 4)

    # An address that is not A's own is dropped on its way out; A's own still goes, and so does
    # one of its allowed address pairs once a refresh lists it.
    for extra in ("10.50.0.98/32", "10.50.0.99/32"):
        in_ns(world.guests[PORT_A], "ip", "addr", "add", extra, "dev", "eth0")
    assert not pings(world.guests[PORT_A], "10.50.0.12", source="10.50.0.99")
    assert pings(world.guests[PORT_A], "10.50.0.12", source="10.50.0.11")
    assert not pings(world.guests[PORT_A], "10.50.0.12", source="10.50.0.98")
    paired = replace(a, allowed_address_pairs=[{"ip_address": "10.50.0.98"}])
    driver.refresh(msg.PortsRefresh(request_id="r3", ports=[paired]))
    assert eventually(lambda: pings(world.guests[PORT_A], "10.50.0.12", source="10.50.0.98"), 4)
    assert not pings(world.guests[PORT_A], "10.50.0.12", source="10.50.0.99")

    # A restarted agent adopts the running server instead of starting a second one.
    pid = driver.dhcp.pid(NETWORK)
    assert pid is not None
    again = world.driver()
    again.start()
    assert again.dhcp.pid(NETWORK) == pid
    assert pings(world.guests[PORT_A], "10.50.0.12")

    # Unplugging A leaves B working; unplugging B removes the network's every trace.
    again.unplug(INSTANCE, [PORT_A])
    assert tap_name(PORT_A) not in world.host_links()
    assert "kumo-i-a0a0a0a0-11" not in world.kumo_rules()
    again.unplug(INSTANCE)
    assert not {bridge, vxlan, host_leg(NETWORK), tap_name(PORT_B)} & world.host_links()
    assert not Path(f"/proc/{pid}").exists() or _is_zombie(pid)
    leftover = world.kumo_rules()
    assert "kumo-i-" not in leftover and "kumo-o-" not in leftover and "kumo-a-" not in leftover

    # Cleanup removes even the hooks.
    again.cleanup()
    assert world.kumo_rules() == ""


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True
