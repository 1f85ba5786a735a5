"""Naming a container's veth as its port's tap (compute_agent/network/veth.py), against a fake of
the one outside thing it uses: the `ip` command in the host's namespace. The fake keeps the host's
links (name, kind, bridge, up) and answers `ip -j -d link show` as iproute2 does, so the test
checks the host that results, not only the commands."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest

from compute_agent.network import veth
from compute_agent.network.base import NetworkError
from compute_agent.network.linuxbridge import LinuxBridgeDriver
from compute_agent.network.runner import Runner

TAP, BRIDGE = "tap5a1b2c3d-00", "brq0a1b2c3d-00"


class FakeIp(Runner):
    def __init__(self, **links: dict[str, Any]) -> None:
        super().__init__()
        self.links = {name: {"ifname": name, "flags": ["BROADCAST", "UP"], **link}
                      for name, link in links.items()}
        self.changes: list[list[str]] = []

    def run(self, argv: Sequence[str], *, check: bool = True, input: str | None = None) -> str:
        match list(argv):
            case ["ip", "-j", "-d", "link", "show"]:
                return json.dumps(list(self.links.values()))
            case ["ip", "link", "set", "dev", name, *change]:
                self.changes.append([name, *change])
                link = self.links[name]
                match change:
                    case ["down"]:
                        link["flags"] = [f for f in link["flags"] if f != "UP"]
                    case ["up"]:
                        link["flags"] = [*link["flags"], "UP"]
                    case ["name", new]:
                        assert "UP" not in link["flags"], "a link is renamed only when down"
                        self.links[new] = {**self.links.pop(name), "ifname": new}
                        # As the kernel does: a rename keeps the device in its bridge.
                    case ["master", bridge]:
                        link["master"] = bridge
                    case _:
                        raise AssertionError(f"unexpected change {change}")
                return ""
        raise AssertionError(f"unexpected command {argv}")

    def state(self, name: str) -> tuple[str, str, bool]:
        link = self.links[name]
        return link.get("master", ""), link["linkinfo"]["info_kind"], "UP" in link["flags"]


def a_veth(master: str = BRIDGE, **more: Any) -> dict[str, Any]:
    return {"master": master, "linkinfo": {"info_kind": "veth"}, **more}


def test_a_veth_libvirt_named_gets_the_tap_name_and_stays_up_in_its_bridge():
    host = FakeIp(vnet3=a_veth(), eth0={"linkinfo": {"info_kind": "veth"}})
    assert veth.adopt(host, "vnet3", TAP, BRIDGE) is True
    assert "vnet3" not in host.links
    assert host.state(TAP) == (BRIDGE, "veth", True)
    assert host.changes == [["vnet3", "down"], ["vnet3", "name", TAP], [TAP, "up"]]


def test_a_veth_out_of_its_bridge_is_put_back():
    host = FakeIp(vnet0=a_veth(master=""))
    veth.adopt(host, "vnet0", TAP, BRIDGE)
    assert host.state(TAP) == (BRIDGE, "veth", True)


def test_a_veth_already_named_right_is_left_alone():
    host = FakeIp(**{TAP: a_veth()})
    assert veth.adopt(host, TAP, TAP, BRIDGE) is False
    # Renamed by an earlier run of the agent, while libvirt still says vnet3.
    assert veth.adopt(host, "vnet3", TAP, BRIDGE) is False
    assert host.changes == []


def test_a_named_veth_that_went_down_comes_up():
    host = FakeIp(**{TAP: a_veth(flags=["BROADCAST"])})
    assert veth.adopt(host, "vnet3", TAP, BRIDGE) is True
    assert host.state(TAP) == (BRIDGE, "veth", True)


@pytest.mark.parametrize(("links", "message"), [
    ({}, "no device vnet3"),
    ({"vnet3": {"master": BRIDGE, "linkinfo": {"info_kind": "bridge"}}}, "not a veth"),
    ({"vnet3": a_veth(), TAP: {"linkinfo": {"info_kind": "tun"}}}, f"another {TAP} exists"),
])
def test_what_is_not_a_container_veth_is_never_renamed(links, message):
    host = FakeIp(**links)
    with pytest.raises(NetworkError, match=message):
        veth.adopt(host, "vnet3", TAP, BRIDGE)
    assert host.changes == []


@pytest.mark.parametrize("bad", ["", "x" * 16, "../eth0", " vnet3"])
def test_names_are_checked_before_any_command(bad):
    host = FakeIp(vnet3=a_veth())
    with pytest.raises(NetworkError, match="not an interface name"):
        veth.adopt(host, bad, TAP, BRIDGE)
    assert host.changes == []


def test_the_linux_bridge_driver_names_devices_in_its_host_namespace(tmp_path):
    host = FakeIp(vnet7=a_veth())
    driver = LinuxBridgeDriver(state_dir=tmp_path, runner=host, allow_host_netns=True)
    assert driver.name_device("vnet7", TAP, BRIDGE) is True
    assert host.state(TAP) == (BRIDGE, "veth", True)
