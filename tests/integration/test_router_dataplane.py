"""A router on a host's data plane, with real packets (compute_agent/network/router.py).

The test makes its own namespaces and nothing else: a "host" (two bridges: a tenant network and
the external network), a "guest" on the tenant bridge (192.168.77.10, gateway .1) and an
"outside" machine on the external bridge (203.0.113.1, which is also the external subnet's
gateway). The outside has no route to 192.168.77.0/24, so whatever reaches it from the guest, or
the guest from it, went through the router's NAT.

Skipped only when not root (namespaces need CAP_SYS_ADMIN and CAP_NET_ADMIN) or without
busybox (ping and nc); CI (KUMO_NO_SKIPS) turns either into a failure.
"""

from __future__ import annotations

import dataclasses
import subprocess
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from compute_agent import messages as msg
from compute_agent.network import router
from compute_agent.network.base import bridge_name, tap_name
from compute_agent.network.linuxbridge import LinuxBridgeDriver
from compute_agent.network.runner import Runner
from tests.integration.dataplane import BUSYBOX, NEEDS_BUSYBOX, NEEDS_ROOT

pytestmark = [NEEDS_ROOT, NEEDS_BUSYBOX]

TENANT_NET = "7e4a0c11-0000-4000-8000-000000000001"
EXTERNAL_NET = "e0a0c11e-0000-4000-8000-000000000002"
GATEWAY_IP, FLOATING_IP, GUEST_IP, OUTSIDE_IP = ("203.0.113.5", "203.0.113.10", "192.168.77.10",
                                                 "203.0.113.1")


def sh(*argv: str, check: bool = True, timeout: float = 15) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=timeout)


def in_ns(ns: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return sh("ip", "netns", "exec", ns, *argv, check=check)


def pings(ns: str, address: str) -> bool:
    return in_ns(ns, BUSYBOX, "ping", "-c", "1", "-W", "2", address, check=False).returncode == 0


class Recording(Runner):
    def __init__(self, netns: str) -> None:
        super().__init__(netns)
        self.calls: list[list[str]] = []

    def run(self, argv: Sequence[str], *, check: bool = True, input: str | None = None) -> str:
        self.calls.append(list(argv))
        return super().run(argv, check=check, input=input)


@dataclass
class World:
    host: str
    guest: str
    outside: str
    runner: Runner
    state_dir: Path

    def ensure_bridge(self, leg: msg.NetworkInfo) -> str:
        """What the network driver's ensure_bridge does for the router, minus VXLAN: the leg's
        network's bridge, up, in the host's namespace."""
        name = bridge_name(leg.network_id)
        if self.runner.run(["ip", "link", "show", name], check=False) == "":
            self.runner.run(["ip", "link", "add", name, "type", "bridge"])
        self.runner.run(["ip", "link", "set", name, "up"])
        return name

    def host_links(self) -> set[str]:
        out = in_ns(self.host, "ip", "-o", "link", "show").stdout
        return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}

    def counted(self, source: str) -> int:
        """Echo requests the outside received from `source` (an iptables counter there)."""
        out = in_ns(self.outside, "iptables-legacy", "-L", "INPUT", "-v", "-x", "-n").stdout
        for line in out.splitlines():
            fields = line.split()
            if len(fields) > 7 and fields[7] == source:
                return int(fields[0])
        raise AssertionError(f"no counter for {source}: {out}")


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    tag = uuid.uuid4().hex[:6]
    host, guest, outside = f"kl3h-{tag}", f"kl3g-{tag}", f"kl3o-{tag}"
    w = World(host, guest, outside, Runner(host), tmp_path / "agent")
    try:
        for ns in (host, guest, outside):
            sh("ip", "netns", "add", ns)
            in_ns(ns, "ip", "link", "set", "lo", "up")
        tenant = w.ensure_bridge(msg.NetworkInfo(network_id=TENANT_NET, network_name="t",
                                                 port_id="", mac_address=""))
        external = w.ensure_bridge(msg.NetworkInfo(network_id=EXTERNAL_NET, network_name="e",
                                                   port_id="", mac_address=""))
        for ns, bridge, address, gateway in ((guest, tenant, f"{GUEST_IP}/24", "192.168.77.1"),
                                             (outside, external, f"{OUTSIDE_IP}/24", "")):
            sh("ip", "-n", host, "link", "add", f"v{ns}", "type", "veth",
               "peer", "name", "eth0", "netns", ns)
            sh("ip", "-n", host, "link", "set", f"v{ns}", "master", bridge, "up")
            in_ns(ns, "ip", "addr", "add", address, "dev", "eth0")
            in_ns(ns, "ip", "link", "set", "eth0", "up")
            if gateway:
                in_ns(ns, "ip", "route", "add", "default", "via", gateway)
        for source in (GATEWAY_IP, FLOATING_IP, GUEST_IP):
            in_ns(outside, "iptables-legacy", "-A", "INPUT", "-s", source, "-p", "icmp",
                  "--icmp-type", "echo-request", "-j", "ACCEPT")
        yield w
    finally:
        router.remove_all(w.runner, w.state_dir)
        for ns in (guest, outside, host):
            sh("ip", "netns", "del", ns, check=False)


def leg(port_id: str, network_id: str, mac: str, ip: str, cidr: str,
        gateway_ip: str) -> msg.NetworkInfo:
    return msg.NetworkInfo(network_id=network_id, network_name="", port_id=port_id,
                           mac_address=mac, ip_address=ip, network_type="flat", mtu=1500,
                           subnets=[msg.SubnetInfo(subnet_id=network_id, cidr=cidr,
                                                   gateway_ip=gateway_ip)])


def spec(*, fips: bool, interfaces: bool = True) -> msg.RouterSpec:
    gateway = leg("9a7e0000-aaaa-4bbb-8ccc-000000000001", EXTERNAL_NET, "fa:16:3e:00:00:01",
                  GATEWAY_IP, "203.0.113.0/24", OUTSIDE_IP)
    inside = leg("1f1e0000-aaaa-4bbb-8ccc-000000000002", TENANT_NET, "fa:16:3e:00:00:02",
                 "192.168.77.1", "192.168.77.0/24", "192.168.77.1")
    return msg.RouterSpec(
        request_id="req-l3", router_id="0d5e1d3f-0000-4000-8000-00000000r001", gateway=gateway,
        interfaces=[inside] if interfaces else [], snat=True,
        floating_ips=[msg.FloatingMapping(FLOATING_IP, GUEST_IP)] if fips else [])


def holders(router_id: str) -> list[int]:
    """Live processes holding this router's namespace."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if f"KUMO_ROUTER={router_id}".encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def test_guest_reaches_outside_and_outside_reaches_guest_by_floating_ip(world: World) -> None:
    rid = spec(fips=False).router_id

    # SNAT only: the guest reaches the outside, which sees the router's gateway address.
    router.sync(world.runner, spec(fips=False), world.ensure_bridge, world.state_dir)
    recording = Recording(world.host)
    router.sync(recording, spec(fips=False), world.ensure_bridge, world.state_dir)  # again
    # Read back from the kernel, the router is found as it should be: nothing is redone.
    assert [c for c in recording.calls if {"add", "del", "replace"} & set(c)] == []
    assert len(holders(rid)) == 1
    assert pings(world.guest, OUTSIDE_IP)
    assert world.counted(GATEWAY_IP) >= 1 and world.counted(GUEST_IP) == 0
    assert not pings(world.outside, FLOATING_IP)

    # A floating IP: the outside reaches the guest by it (ICMP and TCP), the guest goes out as it.
    router.sync(world.runner, spec(fips=True), world.ensure_bridge, world.state_dir)
    assert pings(world.outside, FLOATING_IP)
    server = subprocess.Popen(["ip", "netns", "exec", world.guest, BUSYBOX, "nc", "-l", "-p",
                               "8080", "-e", "echo", "hello-from-guest"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        reply = ""
        for _ in range(50):  # until the listener is up
            reply = in_ns(world.outside, BUSYBOX, "nc", "-w", "3", FLOATING_IP, "8080",
                          check=False).stdout
            if reply:
                break
            time.sleep(0.1)
        assert reply.strip() == "hello-from-guest"
    finally:
        server.kill()
        server.wait()
    # From inside too: the guest reaches its own floating IP (through the router and back).
    assert pings(world.guest, FLOATING_IP)
    before = world.counted(FLOATING_IP)
    assert pings(world.guest, OUTSIDE_IP)
    assert world.counted(FLOATING_IP) == before + 1

    # The floating IP removed: the outside no longer reaches the guest; SNAT still works.
    router.sync(world.runner, spec(fips=False), world.ensure_bridge, world.state_dir)
    assert not pings(world.outside, FLOATING_IP)
    assert pings(world.guest, OUTSIDE_IP)

    # The interface removed: its leg leaves the tenant bridge and the guest is cut off.
    host_end = router.host_end_name(spec(fips=False).interfaces[0].port_id)
    assert host_end in world.host_links()
    router.sync(world.runner, spec(fips=False, interfaces=False), world.ensure_bridge,
                world.state_dir)
    assert host_end not in world.host_links()
    assert not pings(world.guest, OUTSIDE_IP)

    # Removed: no process, namespace, veth or state left; removing again is no error.
    router.remove(world.runner, rid, world.state_dir)
    assert holders(rid) == []
    assert not any(name.startswith("rtr") for name in world.host_links())
    assert not (world.state_dir / "routers" / rid).exists()
    router.remove(world.runner, rid, world.state_dir)


def test_a_new_agent_adopts_the_running_router(world: World) -> None:
    """The holder outlives the agent's view of it: a sync from a fresh start (as after an agent
    restart, nothing in memory) keeps the same namespace, and the guest never loses its way
    out."""
    rid = spec(fips=True).router_id
    router.sync(world.runner, spec(fips=True), world.ensure_bridge, world.state_dir)
    [pid] = holders(rid)
    started = router._children.pop(pid)  # the restarted agent did not start it
    router.sync(world.runner, spec(fips=True), world.ensure_bridge, world.state_dir)
    assert holders(rid) == [pid]
    assert pings(world.outside, FLOATING_IP)
    router.remove_all(world.runner, world.state_dir)
    started.wait(timeout=5)
    assert holders(rid) == []


def test_router_behind_the_linuxbridge_driver(world: World) -> None:
    """The same router through the network driver the agents use: the tenant network a VXLAN
    bridge, the external one flat on the host's ext0, the guest's tap under security rules
    (bridged traffic through iptables, a conntrack zone per network). The router's traffic to
    the guest is held to the guest's rules, and the answers to the guest's own connections come
    back through them."""
    fabric, ext = f"f{world.host}"[:15], "ext0"
    sh("ip", "-n", world.host, "link", "add", fabric, "type", "veth", "peer", "name", "fab1")
    in_ns(world.host, "ip", "addr", "add", "10.77.0.11/24", "dev", fabric)
    for device in (fabric, "fab1"):
        in_ns(world.host, "ip", "link", "set", device, "up")
    # The outside moves from the test's external bridge to the driver's, through ext0.
    sh("ip", "-n", world.host, "link", "set", f"v{world.outside}", "nomaster")
    sh("ip", "-n", world.host, "link", "set", f"v{world.outside}", "name", ext)
    driver = LinuxBridgeDriver(state_dir=world.state_dir, netns=world.host,
                               tunnel_ip="10.77.0.11", physical_interfaces={"public": ext})
    guest_port = msg.NetworkInfo(
        network_id=TENANT_NET, network_name="t", port_id="9c9c0000-aaaa-4bbb-8ccc-000000000009",
        mac_address="fa:16:3e:00:00:09", ip_address=GUEST_IP, network_type="vxlan",
        segmentation_id=177, mtu=1450,
        subnets=[msg.SubnetInfo(subnet_id="s", cidr="192.168.77.0/24", gateway_ip="192.168.77.1",
                                enable_dhcp=False)],
        rules=[msg.SecurityRule(direction="ingress", protocol="icmp"),
               msg.SecurityRule(direction="ingress", protocol="tcp", port_min=8080, port_max=8080),
               msg.SecurityRule(direction="egress")])
    try:
        driver.plug("instance-1", [guest_port])
        # The guest's NIC as libvirt would make it: a tap in the network's bridge.
        tap = tap_name(guest_port.port_id)
        in_ns(world.host, "ip", "link", "set", f"v{world.guest}", "nomaster")
        sh("ip", "-n", world.host, "link", "set", f"v{world.guest}", "name", tap)
        in_ns(world.host, "ip", "link", "set", tap, "master", bridge_name(TENANT_NET), "up")
        in_ns(world.guest, "ip", "link", "set", "eth0", "address", guest_port.mac_address)

        rspec = spec(fips=True)
        assert rspec.gateway is not None
        rspec.gateway = dataclasses.replace(rspec.gateway, physical_network="public")
        rspec.interfaces = [dataclasses.replace(rspec.interfaces[0], network_type="vxlan",
                                                segmentation_id=177, mtu=1450)]
        driver.sync_router(rspec)

        assert pings(world.outside, FLOATING_IP)
        assert serves(world, world.guest, FLOATING_IP, 8080)
        assert not serves(world, world.guest, FLOATING_IP, 9999)  # not in the guest's rules
        assert serves(world, world.outside, OUTSIDE_IP, 9090, client=world.guest)

        driver.remove_router(rspec.router_id)
        assert holders(rspec.router_id) == []
        assert not any(name.startswith("rtr") for name in world.host_links())
    finally:
        driver.cleanup()


def serves(world: World, server_ns: str, address: str, port: int, client: str = "") -> bool:
    """Whether a TCP connection from `client` (the outside by default) to address:port reaches
    a listener in `server_ns`."""
    server = subprocess.Popen(["ip", "netns", "exec", server_ns, BUSYBOX, "nc", "-l", "-p",
                               str(port), "-e", "echo", "hello"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # until the listener is up, or long enough to say no
            reply = in_ns(client or world.outside, BUSYBOX, "nc", "-w", "2", address, str(port),
                          check=False).stdout
            if reply.strip() == "hello":
                return True
            time.sleep(0.2)
        return False
    finally:
        server.kill()
        server.wait()
