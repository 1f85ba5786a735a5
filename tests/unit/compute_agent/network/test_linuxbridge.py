"""The Linux bridge driver without a kernel (compute_agent/network/linuxbridge.py): a runner
that records every command and keeps just enough of a host (links, bridge members, VXLAN flood
lists, the hooks and Kumo's chains) to answer the driver's reads, so that a repeated plug can be
checked to change nothing. Ports here have no DHCP address, so no dnsmasq is started; the real
thing, with packets and DHCP, is tests/integration/test_linuxbridge_dataplane.py."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from compute_agent import messages as msg
from compute_agent.network import create_driver, linuxbridge
from compute_agent.network.base import NetworkError, Nic, bridge_name, tap_name, vxlan_name
from compute_agent.network.linuxbridge import LinuxBridgeDriver
from compute_agent.network.runner import Runner
from compute_agent.network.usermode import UserModeDriver

NET = "5a1b2c3d-0000-4000-8000-00000000e001"
VM = "1b5f0000-0000-4000-8000-0000000000aa"


class FakeHost(Runner):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[list[str]] = []
        self.inputs: list[str] = []
        self.links: set[str] = set()
        self.masters: dict[str, str] = {}
        self.fdb: dict[str, set[str]] = {}
        self.hooks: set[str] = set()
        self.chains: set[str] = set()  # iptables (raw and filter)
        self.eb_chains: set[str] = set()

    def run(self, argv: Sequence[str], *, check: bool = True, input: str | None = None) -> str:
        argv = list(argv)
        self.calls.append(argv)
        if input is not None:
            self.inputs.append(input)
            chains = self.chains if argv[0].startswith("iptables") else self.eb_chains
            for line in input.splitlines():
                if line.startswith(":kumo"):
                    chains.add(line[1:].split()[0])
                elif line.startswith("-X "):
                    chains.discard(line.split()[1])
        match argv:
            case ["ip", "-o", "link", "show", "dev", name]:
                return f"7: {name}: <UP>\n" if name in self.links else ""
            case ["ip", "-o", "link", "show", "master", bridge]:
                return "".join(f"8: {m}: <UP>\n" for m, b in self.masters.items() if b == bridge)
            case ["ip", "link", "add", name, *_]:
                self.links.add(name)
            case ["ip", "link", "del", name]:
                self.links.discard(name)
                self.masters.pop(name, None)
            case ["ip", "link", "set", name, "nomaster"]:
                self.masters.pop(name, None)
            case ["ip", "link", "set", name, *rest] if "master" in rest:
                self.masters[name] = rest[rest.index("master") + 1]
            case ["bridge", "fdb", "show", "dev", device]:
                return "".join(f"00:00:00:00:00:00 dst {p} self permanent\n"
                               for p in sorted(self.fdb.get(device, ())))
            case ["bridge", "fdb", "append", _, "dev", device, "dst", peer]:
                self.fdb.setdefault(device, set()).add(peer)
            case ["bridge", "fdb", "del", _, "dev", device, "dst", peer]:
                self.fdb.get(device, set()).discard(peer)
            case ["iptables-legacy-save", "-t", table]:
                hooks = "".join(f"-A {b} -j {c}\n" for t, b, c in map(str.split, self.hooks)
                                if t == table)
                listed = [c for c in sorted(self.chains) if (c == "kumo-zone") == (table == "raw")]
                return "".join(f":{c} - [0:0]\n" for c in listed) + hooks
            case ["ebtables-save"]:
                return "".join(f":{c} RETURN\n" for c in sorted(self.eb_chains))
            case ["iptables-legacy", "-w", "-t", table, "-I", builtin, "1", "-j", chain]:
                self.hooks.add(f"{table} {builtin} {chain}")
            case ["iptables-legacy", "-w", "-t", table, "-D", builtin, "-j", chain]:
                self.hooks.discard(f"{table} {builtin} {chain}")
            case ["ebtables", "-L", "FORWARD"]:
                return "-j kumo-fwd\n" if "eb FORWARD kumo-fwd" in self.hooks else ""
            case ["ebtables", "-I", "FORWARD", "1", "-j", chain]:
                self.hooks.add(f"eb FORWARD {chain}")
            case ["ebtables", "-D", "FORWARD", "-j", chain]:
                self.hooks.discard(f"eb FORWARD {chain}")
        return ""

    def changes(self) -> list[list[str]]:
        """The commands that change links or tunnels (not reads, not rule commits)."""
        return [c for c in self.calls if c[:3] in (["ip", "link", "add"], ["ip", "link", "del"])
                or c[:3] in (["bridge", "fdb", "append"], ["bridge", "fdb", "del"])]


@pytest.fixture
def host() -> FakeHost:
    return FakeHost()


@pytest.fixture
def driver(host: FakeHost, tmp_path: Path) -> LinuxBridgeDriver:
    return LinuxBridgeDriver(state_dir=tmp_path, tunnel_ip="192.0.2.1",
                             physical_interfaces={"physnet1": "eth9"}, allow_host_netns=True,
                             runner=host)


def port(port_id: str = "a0a0a0a0-1111-4000-8000-000000000001", **fields: object) -> \
        msg.NetworkInfo:
    values: dict[str, object] = {
        "network_id": NET, "network_name": "n", "port_id": port_id,
        "mac_address": "fa:16:3e:00:00:01", "ip_address": "10.0.0.5", "network_type": "vxlan",
        "segmentation_id": 4242, "mtu": 1450, "peers": ["192.0.2.1", "192.0.2.2"],
        "rules": [msg.SecurityRule(direction="ingress", protocol="icmp")],
    }
    values.update(fields)
    return msg.NetworkInfo(**values)  # type: ignore[arg-type]


def test_names_fit_linux_interface_names() -> None:
    assert bridge_name(NET) == "brq5a1b2c3d-00"
    assert tap_name("a0a0a0a0-1111-4000") == "tapa0a0a0a0-11"
    assert vxlan_name(4242) == "vxlan-4242"
    assert max(len(bridge_name(NET)), len(tap_name(NET)), len(vxlan_name(16777215))) <= 15


def test_the_nic_of_a_port_is_a_tap_in_its_bridge_unless_user_mode(
    driver: LinuxBridgeDriver
) -> None:
    assert driver.nic(port()) == Nic(kind="bridge", mac_address="fa:16:3e:00:00:01",
                                     bridge="brq5a1b2c3d-00", tap="tapa0a0a0a0-11", mtu=1450)
    assert driver.nic(port(network_type="user")).kind == "user"
    assert UserModeDriver().nic(port()).kind == "user"


def test_plug_makes_the_bridge_and_tunnel_and_a_repeat_changes_nothing(
    driver: LinuxBridgeDriver, host: FakeHost
) -> None:
    driver.plug(VM, [port()])
    assert {"brq5a1b2c3d-00", "vxlan-4242"} <= host.links
    assert host.masters["vxlan-4242"] == "brq5a1b2c3d-00"
    assert ["ip", "link", "add", "vxlan-4242", "type", "vxlan", "id", "4242", "local",
            "192.0.2.1", "dstport", "4789", "nolearning"] in host.calls
    assert host.fdb["vxlan-4242"] == {"192.0.2.2"}  # the peers, never itself
    assert {"filter FORWARD kumo-fwd", "raw PREROUTING kumo-zone",
            "eb FORWARD kumo-fwd"} <= host.hooks
    first_rules = host.inputs[-2:]
    before = len(host.changes())
    driver.plug(VM, [port()])
    assert len(host.changes()) == before
    assert host.inputs[-2:] == first_rules  # the same rules, committed whole again
    assert driver.port_ids(VM) == ["a0a0a0a0-1111-4000-8000-000000000001"]


def test_changed_peers_update_the_flood_list(driver: LinuxBridgeDriver, host: FakeHost) -> None:
    driver.plug(VM, [port()])
    driver.plug(VM, [port(peers=["192.0.2.3"])])
    assert host.fdb["vxlan-4242"] == {"192.0.2.3"}
    driver.refresh(msg.PortsRefresh(request_id="r", ports=[port(peers=["192.0.2.3",
                                                                       "192.0.2.4"])]))
    assert host.fdb["vxlan-4242"] == {"192.0.2.3", "192.0.2.4"}


def test_a_flat_network_bridges_the_mapped_interface(
    driver: LinuxBridgeDriver, host: FakeHost
) -> None:
    host.links.add("eth9")
    driver.plug(VM, [port(network_type="flat", segmentation_id=None,
                          physical_network="physnet1")])
    assert host.masters["eth9"] == "brq5a1b2c3d-00"
    with pytest.raises(NetworkError, match="physnet2"):
        driver.plug(VM, [port(network_id="other", network_type="flat",
                              physical_network="physnet2")])
    driver.unplug(VM)
    assert "eth9" in host.links and "eth9" not in host.masters  # released, not deleted


def test_unplugging_the_last_port_removes_the_network_and_its_chains(
    driver: LinuxBridgeDriver, host: FakeHost
) -> None:
    a, b = port(), port("b0b0b0b0-2222-4000-8000-000000000002", mac_address="fa:16:3e:00:00:02")
    driver.plug(VM, [a, b])
    assert "kumo-i-b0b0b0b0-22" in host.chains
    driver.unplug(VM, ["b0b0b0b0-2222-4000-8000-000000000002"])
    assert "kumo-i-b0b0b0b0-22" not in host.chains and "kumo-i-a0a0a0a0-11" in host.chains
    assert "brq5a1b2c3d-00" in host.links
    driver.unplug(VM)
    assert not {"brq5a1b2c3d-00", "vxlan-4242"} & host.links
    assert host.chains == {"kumo-fwd", "kumo-zone"} and host.eb_chains == {"kumo-fwd"}
    driver.unplug(VM)  # nothing plugged: no error
    driver.cleanup()
    assert not host.hooks


def test_a_bridge_with_a_router_leg_in_it_stays(driver: LinuxBridgeDriver, host: FakeHost) -> None:
    driver.plug(VM, [port()])
    host.links.add("rtr9a000000-11")
    host.masters["rtr9a000000-11"] = "brq5a1b2c3d-00"
    driver.unplug(VM)
    assert "brq5a1b2c3d-00" in host.links


def test_refresh_touches_known_ports_only_and_drops_removed_ones(
    driver: LinuxBridgeDriver, host: FakeHost
) -> None:
    driver.plug(VM, [port()])
    stranger = port("c0c0c0c0-3333-4000-8000-000000000003")
    driver.refresh(msg.PortsRefresh(request_id="r", ports=[port(rules=[]), stranger]))
    assert "kumo-i-c0c0c0c0-33" not in host.chains
    assert "-p icmp" not in host.inputs[-2]  # the ICMP rule went
    assert ["conntrack", "-D", "-w", "1", "--orig-dst", "10.0.0.5"] in host.calls
    driver.refresh(msg.PortsRefresh(request_id="r", removed=[port().port_id]))
    assert driver.port_ids(VM) == [] and "brq5a1b2c3d-00" not in host.links


def test_what_was_plugged_survives_a_restart(host: FakeHost, tmp_path: Path) -> None:
    first = LinuxBridgeDriver(state_dir=tmp_path, tunnel_ip="192.0.2.1", allow_host_netns=True,
                              runner=host)
    first.plug(VM, [port()])
    again = LinuxBridgeDriver(state_dir=tmp_path, tunnel_ip="192.0.2.1", allow_host_netns=True,
                              runner=host)
    again.start()
    assert again.port_ids(VM) == [port().port_id]
    again.unplug(VM)
    assert "brq5a1b2c3d-00" not in host.links


def test_the_driver_refuses_the_machines_own_namespace_unless_allowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(linuxbridge, "in_machine_netns", lambda: True)
    with pytest.raises(NetworkError, match="--netns"):
        LinuxBridgeDriver(state_dir=tmp_path)
    with pytest.raises(NetworkError, match="--netns"):
        create_driver("linuxbridge", state_dir=tmp_path)
    with pytest.raises(NetworkError, match="no such network namespace"):
        LinuxBridgeDriver(state_dir=tmp_path, netns="kumo-no-such-netns-here")
    LinuxBridgeDriver(state_dir=tmp_path, allow_host_netns=True, runner=FakeHost())


def test_driver_selection(tmp_path: Path) -> None:
    assert isinstance(create_driver("user", state_dir=tmp_path), UserModeDriver)
    with pytest.raises(NetworkError, match="bogus"):
        create_driver("bogus", state_dir=tmp_path)
    with pytest.raises(NetworkError, match="PHYSNET:INTERFACE"):
        linuxbridge.parse_mappings(["eth0"])
    assert linuxbridge.parse_mappings(["physnet1:eth1"]) == {"physnet1": "eth1"}


def test_a_port_without_port_security_gets_no_chains(
    driver: LinuxBridgeDriver, host: FakeHost
) -> None:
    driver.plug(VM, [replace(port(), port_security=False)])
    assert not any(c.startswith(("kumo-i-", "kumo-o-")) for c in host.chains)
    assert host.eb_chains == {"kumo-fwd"}


def test_a_refresh_handled_after_a_newer_one_changes_nothing(
    driver: LinuxBridgeDriver, host: FakeHost
) -> None:
    # A worker's threads may handle two refreshes of one port in either order: the older one
    # (revision 2, with the ICMP rule) must not undo the newer (revision 3, without it).
    driver.plug(VM, [port(revision=1)])
    driver.refresh(msg.PortsRefresh(request_id="r3", ports=[port(rules=[], revision=3)]))
    applied = host.inputs[-2]
    driver.refresh(msg.PortsRefresh(request_id="r2", ports=[port(revision=2)]))
    assert "-p icmp" not in host.inputs[-2] and host.inputs[-2] == applied
    assert driver.ports[port().port_id].revision == 3


def test_an_older_router_spec_or_one_after_the_removal_is_ignored(
    driver: LinuxBridgeDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    from compute_agent.network import router

    synced: list[int] = []
    monkeypatch.setattr(router, "sync", lambda runner, spec, ensure, state: synced.append(
        spec.revision))
    monkeypatch.setattr(router, "remove", lambda runner, router_id, state: None)
    spec = msg.RouterSpec(request_id="r", router_id="9a000000-1111-4000-8000-000000000009")
    for revision in (1, 3, 2):
        spec.revision = revision
        driver.sync_router(spec)
    assert synced == [1, 3]
    driver.remove_router(spec.router_id)
    spec.revision = 4  # sent before the removal, handled after it
    driver.sync_router(spec)
    assert synced == [1, 3]


def test_a_router_moved_away_at_a_revision_can_come_back_with_a_newer_one(
    driver: LinuxBridgeDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A host that returns after a failure is told to drop the routers that moved off it, at
    their current revision: when one is placed on it again later (a newer revision) it is built
    again; a spec from before the move is still ignored."""
    from compute_agent.network import router

    synced: list[int] = []
    removed: list[str] = []
    monkeypatch.setattr(router, "sync", lambda runner, spec, ensure, state: synced.append(
        spec.revision))
    monkeypatch.setattr(router, "remove", lambda runner, router_id, state: removed.append(
        router_id))
    spec = msg.RouterSpec(request_id="r", router_id="9a000000-1111-4000-8000-00000000000a",
                          revision=3)
    driver.sync_router(spec)
    driver.remove_router(spec.router_id, 3)  # read while it was being placed here: kept
    assert removed == []
    driver.remove_router(spec.router_id, 6)
    driver.remove_router(spec.router_id, 5)  # an older removal changes nothing more
    assert removed == [spec.router_id]
    spec.revision = 5
    driver.sync_router(spec)
    spec.revision = 7
    driver.sync_router(spec)
    assert synced == [3, 7]
