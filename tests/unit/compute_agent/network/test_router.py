"""compute_agent/network/router.py without a kernel: a runner that records every command and
keeps just enough of a router namespace (its links, addresses and static routes) to answer the
`ip -j` reads, so a second sync can be checked to change nothing. The real thing, with packets,
is tests/integration/test_router_dataplane.py."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from compute_agent import messages as msg
from compute_agent.network import router
from compute_agent.network.base import NetworkError
from compute_agent.network.runner import Runner

PID = 4242
NS = ["nsenter", f"--net=/proc/{PID}/ns/net", "--"]
EXT, NET_A, NET_B = "e0000000-0000-4000-8000-000000000001", "a0000000-0000-4000-8000-0000000000a1", \
    "b0000000-0000-4000-8000-0000000000b1"
GW_PORT, PORT_A, PORT_B = "9a000000-1111-4000-8000-000000000001", \
    "1a000000-2222-4000-8000-000000000002", "1b000000-3333-4000-8000-000000000003"
QG, QR_A, QR_B = "qg-9a000000-11", "qr-1a000000-22", "qr-1b000000-33"


class FakeHost(Runner):
    """A Runner: records commands (`calls`, in the host; `inside`, in the router's namespace)
    and applies the ip(8) commands that change the router's namespace. `started` and `alive`
    are the faked holder processes."""

    def __init__(self) -> None:
        super().__init__("fake-host")
        self.started: list[str] = []
        self.alive: set[int] = set()
        self.calls: list[list[str]] = []
        self.inside: list[list[str]] = []
        self.stdin: dict[str, str] = {}
        self.links: set[str] = {"lo"}
        self.addresses: dict[str, set[str]] = {}
        self.routes: dict[str, str] = {}

    def run(self, argv: Sequence[str], *, check: bool = True, input: str | None = None) -> str:
        argv = list(argv)
        self.calls.append(argv)
        if argv[:3] != NS:
            if argv[:3] == ["ip", "link", "add"]:  # a leg: its router end arrives in the ns
                self.links.add(argv[argv.index("peer") + 2])
            return ""
        cmd = argv[3:]
        self.inside.append(cmd)
        if input is not None:
            self.stdin[cmd[0]] = input
        match cmd:
            case ["ip", "-j", "link", "show"]:
                return json.dumps([{"ifname": name} for name in sorted(self.links)])
            case ["ip", "-j", "-4", "addr", "show"]:
                return json.dumps([
                    {"ifname": name, "addr_info": [
                        {"family": "inet", "local": a.split("/")[0],
                         "prefixlen": int(a.split("/")[1])} for a in sorted(addrs)]}
                    for name, addrs in self.addresses.items() if addrs])
            case ["ip", "-j", "-4", "route", "show", "proto", "static"]:
                return json.dumps([{"dst": d.removesuffix("/32"), "gateway": g}
                                   for d, g in self.routes.items()])
            case ["ip", "link", "del", name]:
                self.links.discard(name)
                self.addresses.pop(name, None)
            case ["ip", "addr", "add", address, "dev", name]:
                self.addresses.setdefault(name, set()).add(address)
            case ["ip", "addr", "del", address, "dev", name]:
                self.addresses[name].discard(address)
            case ["ip", "route", "replace", destination, "via", nexthop, *_]:
                self.routes[destination] = nexthop
            case ["ip", "route", "del", destination, *_]:
                del self.routes[destination]
        return ""

    def changes(self) -> list[list[str]]:
        """The commands that add or remove something (not the ones that set what is there)."""
        return [c for c in self.calls
                if any(word in c for word in ("add", "del", "replace"))]


@pytest.fixture
def host(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHost]:
    """The fake host, with the holder process faked too: one pid, alive until stopped."""
    fake = FakeHost()

    def start(router_id: str) -> int:
        fake.started.append(router_id)
        fake.alive.add(PID)
        return PID

    monkeypatch.setattr(router, "_start_holder", start)
    monkeypatch.setattr(router, "_is_holder", lambda pid, router_id: pid in fake.alive)
    monkeypatch.setattr(router, "_stop_holder", lambda pid: fake.alive.discard(pid))
    yield fake


def leg(port_id: str, network_id: str, ip: str, cidr: str, gateway_ip: str = "",
        mac: str = "fa:16:3e:00:00:01") -> msg.NetworkInfo:
    return msg.NetworkInfo(network_id=network_id, network_name="", port_id=port_id,
                           mac_address=mac, ip_address=ip, network_type="vxlan",
                           segmentation_id=100, mtu=1450,
                           subnets=[msg.SubnetInfo(subnet_id="s-" + network_id, cidr="10.9.0.0/16"),
                                    msg.SubnetInfo(subnet_id=network_id, cidr=cidr,
                                                   gateway_ip=gateway_ip)])


def spec(*, fips: tuple[tuple[str, str], ...] = (("203.0.113.10", "10.0.1.5"),
                                                ("203.0.113.11", "10.0.2.7")),
         second_leg: bool = True, snat: bool = True,
         routes: tuple[tuple[str, str], ...] = ()) -> msg.RouterSpec:
    interfaces = [leg(PORT_A, NET_A, "10.0.1.1", "10.0.1.0/24")]
    if second_leg:
        interfaces.append(leg(PORT_B, NET_B, "10.0.2.1", "10.0.2.0/24"))
    return msg.RouterSpec(
        request_id="req-1", router_id="r-1",
        gateway=leg(GW_PORT, EXT, "203.0.113.5", "203.0.113.0/24", gateway_ip="203.0.113.1"),
        interfaces=interfaces, snat=snat,
        floating_ips=[msg.FloatingMapping(f, x) for f, x in fips],
        routes=[{"destination": d, "nexthop": n} for d, n in routes])


def announced(host: FakeHost) -> list[list[str]]:
    """The (device, address) of each gratuitous ARP sent."""
    return [c[-2:] for c in host.inside if c[0] == sys.executable]


def bridges(network: msg.NetworkInfo) -> str:
    return "brq" + network.network_id[:11]


def test_nat_table_snats_each_subnet_and_maps_each_floating_ip() -> None:
    assert router.nat_rules(spec()) == (
        "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
        ":POSTROUTING ACCEPT [0:0]\n"
        "-A PREROUTING -d 203.0.113.10/32 -j DNAT --to-destination 10.0.1.5\n"
        "-A OUTPUT -d 203.0.113.10/32 -j DNAT --to-destination 10.0.1.5\n"
        "-A PREROUTING -d 203.0.113.11/32 -j DNAT --to-destination 10.0.2.7\n"
        "-A OUTPUT -d 203.0.113.11/32 -j DNAT --to-destination 10.0.2.7\n"
        f"-A POSTROUTING -s 10.0.1.5/32 -o {QG} -j SNAT --to-source 203.0.113.10\n"
        f"-A POSTROUTING -s 10.0.2.7/32 -o {QG} -j SNAT --to-source 203.0.113.11\n"
        "-A POSTROUTING -s 10.0.1.0/24 -m conntrack --ctstate DNAT -j SNAT "
        "--to-source 203.0.113.5\n"
        "-A POSTROUTING -s 10.0.2.0/24 -m conntrack --ctstate DNAT -j SNAT "
        "--to-source 203.0.113.5\n"
        f"-A POSTROUTING -s 10.0.1.0/24 -o {QG} -j SNAT --to-source 203.0.113.5\n"
        f"-A POSTROUTING -s 10.0.2.0/24 -o {QG} -j SNAT --to-source 203.0.113.5\n"
        "COMMIT\n")


def test_nat_table_without_snat_keeps_floating_ips_and_without_gateway_is_empty() -> None:
    rules = router.nat_rules(spec(snat=False, fips=()))
    assert "--to-source 203.0.113.5" not in rules
    rules = router.nat_rules(spec(snat=False))
    assert "--to-destination 10.0.1.5" in rules and "--to-source 203.0.113.10" in rules
    no_gateway = spec()
    no_gateway.gateway = None
    assert "-A " not in router.nat_rules(no_gateway)


def test_sync_builds_legs_addresses_routes_and_nat(host: FakeHost, tmp_path: Path) -> None:
    router.sync(host, spec(), bridges, tmp_path)

    assert (tmp_path / "routers" / "r-1" / "pid").read_text() == f"{PID}\n"
    assert ["ip", "link", "add", "rtr1a000000-22", "mtu", "1450", "type", "veth",
            "peer", "name", QR_A, "netns", str(PID)] in host.calls
    assert ["ip", "link", "set", "rtr9a000000-11", "master", "brqe0000000-00", "mtu", "1450",
            "up"] in host.calls
    assert ["ip", "link", "set", QG, "address", "fa:16:3e:00:00:01", "mtu", "1450",
            "up"] in host.inside
    assert ["sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"] in host.inside
    # The prefix comes from the subnet that holds the address, not the first one listed.
    assert host.addresses == {QR_A: {"10.0.1.1/24"}, QR_B: {"10.0.2.1/24"},
                              QG: {"203.0.113.5/24", "203.0.113.10/32", "203.0.113.11/32"}}
    assert host.routes == {"default": "203.0.113.1"}
    assert host.stdin["iptables-legacy-restore"] == router.nat_rules(spec())
    # The external network hears of each new address on the gateway leg at once.
    assert announced(host) == [[QG, "203.0.113.10"], [QG, "203.0.113.11"], [QG, "203.0.113.5"]]


def test_a_second_sync_changes_nothing(host: FakeHost, tmp_path: Path) -> None:
    router.sync(host, spec(), bridges, tmp_path)
    host.calls.clear()
    host.inside.clear()
    router.sync(host, spec(), bridges, tmp_path)
    assert host.changes() == []
    assert announced(host) == []  # nothing new
    assert host.started == ["r-1"]
    assert host.stdin["iptables-legacy-restore"] == router.nat_rules(spec())


def test_a_removed_floating_ip_leaves_the_gateway_leg_nat_and_conntrack(
        host: FakeHost, tmp_path: Path) -> None:
    router.sync(host, spec(), bridges, tmp_path)
    host.calls.clear()
    smaller = spec(fips=(("203.0.113.10", "10.0.1.5"),))
    router.sync(host, smaller, bridges, tmp_path)

    assert host.addresses[QG] == {"203.0.113.5/24", "203.0.113.10/32"}
    assert "203.0.113.11" not in host.stdin["iptables-legacy-restore"]
    assert "203.0.113.10" in host.stdin["iptables-legacy-restore"]
    assert [NS + ["conntrack", "-D", "--orig-dst", "203.0.113.11"],
            NS + ["conntrack", "-D", "--reply-dst", "203.0.113.11"]] == [
        c for c in host.calls if "conntrack" in c]


def test_a_removed_leg_goes_and_its_subnet_is_no_longer_snatted(
        host: FakeHost, tmp_path: Path) -> None:
    router.sync(host, spec(), bridges, tmp_path)
    host.calls.clear()
    router.sync(host, spec(second_leg=False, fips=()), bridges, tmp_path)

    assert NS + ["ip", "link", "del", QR_B] in host.calls
    assert QR_B not in host.links and QR_A in host.links
    assert "10.0.2.0/24" not in host.stdin["iptables-legacy-restore"]
    assert host.addresses[QG] == {"203.0.113.5/24"}


def test_routes_follow_the_spec(host: FakeHost, tmp_path: Path) -> None:
    router.sync(host, spec(routes=(("172.16.0.0/16", "10.0.1.254"), ("10.8.0.9", "10.0.2.254"))),
                bridges, tmp_path)
    assert host.routes == {"default": "203.0.113.1", "172.16.0.0/16": "10.0.1.254",
                           "10.8.0.9/32": "10.0.2.254"}
    host.calls.clear()
    router.sync(host, spec(routes=(("10.8.0.9/32", "10.0.2.254"),)), bridges,
                tmp_path)
    assert host.routes == {"default": "203.0.113.1", "10.8.0.9/32": "10.0.2.254"}
    assert host.changes() == [NS + ["ip", "route", "del", "172.16.0.0/16", "proto", "static"]]


def test_a_leg_whose_address_no_subnet_holds_fails_before_anything_changes(
        host: FakeHost, tmp_path: Path) -> None:
    bad = spec()
    bad.interfaces[0].ip_address = "192.0.2.1"
    with pytest.raises(NetworkError, match="no subnet holds its address 192.0.2.1"):
        router.sync(host, bad, bridges, tmp_path)
    assert host.calls == [] and host.started == []


@pytest.mark.parametrize("spoil", [
    lambda s: setattr(s.floating_ips[0], "floating_ip", "203.0.113.10\n-A PREROUTING -j DNAT"),
    lambda s: setattr(s.interfaces[0], "ip_address", "fd00::1"),
    lambda s: setattr(s, "router_id", "../../etc"),
    lambda s: setattr(s.interfaces[0], "port_id", "qr x;y"),
    lambda s: s.routes.append({"destination": "10.0.0.0/8"}),
])
def test_a_spec_a_router_cannot_have_is_refused_before_anything_changes(
        host: FakeHost, tmp_path: Path, spoil: Callable[[msg.RouterSpec], None]) -> None:
    bad = spec()
    spoil(bad)
    with pytest.raises(NetworkError):
        router.sync(host, bad, bridges, tmp_path)
    assert host.calls == [] and host.started == []


def test_remove_deletes_the_legs_stops_the_holder_and_forgets_the_router(
        host: FakeHost, tmp_path: Path) -> None:
    router.sync(host, spec(), bridges, tmp_path)
    assert router.known(tmp_path) == ["r-1"]
    router.remove(host, "r-1", tmp_path)
    assert host.links == {"lo"}
    assert host.alive == set()
    assert not (tmp_path / "routers" / "r-1").exists()
    assert router.known(tmp_path) == []
    router.remove(host, "r-1", tmp_path)  # unknown: no error
    router.remove_all(host, tmp_path / "nothing-here")


def test_remove_stops_the_holder_even_when_the_host_cannot_be_entered(
        host: FakeHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    router.sync(host, spec(), bridges, tmp_path)

    def gone(argv: Sequence[str], *, check: bool = True, input: str | None = None) -> str:
        raise NetworkError("nsenter: cannot open /run/netns/fake-host")

    monkeypatch.setattr(host, "run", gone)
    router.remove(host, "r-1", tmp_path)
    assert host.alive == set()
    assert not (tmp_path / "routers" / "r-1").exists()


def test_a_router_whose_holder_died_is_rebuilt(host: FakeHost, tmp_path: Path) -> None:
    router.sync(host, spec(), bridges, tmp_path)
    host.alive.clear()  # killed: its namespace and legs are gone
    host.links, host.addresses, host.routes = {"lo"}, {}, {}
    router.sync(host, spec(), bridges, tmp_path)
    assert host.started == ["r-1", "r-1"]
    assert {QR_A, QR_B, QG} <= host.links


def test_only_a_live_holder_of_that_router_is_adopted(tmp_path: Path) -> None:
    """A pid file naming some other process (a reused pid) is not taken for the holder."""
    assert not router._is_holder(1, "r-1")
    assert not router._is_holder(os.getpid(), "r-1")
