"""Naming a container's veth as its port's tap (compute_agent/network/veth.py) with the real `ip`:
in a namespace of the test's own, a bridge and a veth pair named as libvirt's LXC driver names
them (vnetN), one end moved into a second namespace as a container's is. The veth gets the tap
name, stays in its bridge and up, and frames still cross it; a bridge or a missing device is
refused and left as it was. With the Linux bridge driver's rules in place, such a veth carries
nothing until it is renamed, whatever its port allows: the host's rules fail closed.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest

from compute_agent import messages as msg
from compute_agent.network import veth
from compute_agent.network.base import NetworkError, bridge_name, tap_name
from compute_agent.network.linuxbridge import LinuxBridgeDriver
from compute_agent.network.runner import Runner
from tests.integration.dataplane import BUSYBOX, NEEDS_BUSYBOX, NEEDS_ROOT

pytestmark = [NEEDS_ROOT, NEEDS_BUSYBOX]

TAP, BRIDGE = "tapa0a0a0a0-11", "brq5a1b2c3d-00"


def ip(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *argv], capture_output=True, text=True, check=check, timeout=20)


@pytest.fixture
def host() -> Iterator[tuple[str, str]]:
    """(host namespace, container namespace), with the bridge, the veth vnet7 in it, and the
    container's end (its MAC the port's) in the container's namespace."""
    tag = uuid.uuid4().hex[:6]
    ns, ct = f"kumo-veth-{tag}", f"kumo-vct-{tag}"
    ip("netns", "add", ns)
    ip("netns", "add", ct)
    try:
        ip("-n", ns, "link", "add", BRIDGE, "type", "bridge")
        ip("-n", ns, "link", "set", BRIDGE, "up")
        ip("-n", ns, "addr", "add", "10.77.0.1/24", "dev", BRIDGE)
        ip("-n", ns, "link", "add", "vnet7", "type", "veth", "peer", "name", "vnet8")
        ip("-n", ns, "link", "set", "vnet8", "address", "fa:16:3e:00:00:07", "netns", ct)
        ip("-n", ns, "link", "set", "vnet7", "master", BRIDGE, "up")
        ip("-n", ct, "link", "set", "vnet8", "up")
        ip("-n", ct, "addr", "add", "10.77.0.2/24", "dev", "vnet8")
        yield ns, ct
    finally:
        ip("netns", "del", ct, check=False)
        ip("netns", "del", ns, check=False)


def links(ns: str) -> dict[str, dict]:
    return {link["ifname"]: link for link in json.loads(ip("-n", ns, "-j", "-d", "link",
                                                           "show").stdout)}


def pings(ct: str) -> bool:
    return subprocess.run(["ip", "netns", "exec", ct, BUSYBOX, "ping", "-c1", "-W2", "10.77.0.1"],
                          capture_output=True, timeout=20, check=False).returncode == 0


def test_the_veth_gets_the_tap_name_in_its_bridge_up(host):
    ns, ct = host
    assert pings(ct)
    assert veth.adopt(Runner(ns), "vnet7", TAP, BRIDGE) is True
    found = links(ns)
    assert "vnet7" not in found
    assert found[TAP]["master"] == BRIDGE
    assert "UP" in found[TAP]["flags"]
    assert found[TAP]["linkinfo"]["info_kind"] == "veth"
    assert pings(ct)
    # Again (libvirt still says vnet7): nothing to do.
    assert veth.adopt(Runner(ns), "vnet7", TAP, BRIDGE) is False


def test_a_bridge_or_a_missing_device_is_refused(host):
    ns, _ = host
    with pytest.raises(NetworkError, match="not a veth"):
        veth.adopt(Runner(ns), BRIDGE, TAP, BRIDGE)
    with pytest.raises(NetworkError, match="no device vnet9"):
        veth.adopt(Runner(ns), "vnet9", TAP, BRIDGE)
    assert set(links(ns)) == {"lo", BRIDGE, "vnet7"}


# --- fail closed: the host's rules drop an unnamed veth until it is renamed

NETWORK = "5a1b2c3d-0000-4000-8000-00000000e077"
PORT_A, PORT_B = "a0a0a0a0-7777-4000-8000-000000000001", "b0b0b0b0-7777-4000-8000-000000000002"
ALLOW = [msg.SecurityRule(direction="ingress", protocol="icmp"),
         msg.SecurityRule(direction="egress")]


def _port(port_id: str, mac: str, address: str) -> msg.NetworkInfo:
    return msg.NetworkInfo(
        network_id=NETWORK, network_name="fc", port_id=port_id, mac_address=mac,
        ip_address=address, network_type="vxlan", segmentation_id=4277, mtu=1450,
        subnets=[], rules=ALLOW, hostname=port_id[:8], peers=["192.0.2.1"])


def _guest(host_ns: str, guest_ns: str, host_end: str, port: msg.NetworkInfo) -> None:
    """A guest's NIC as libvirt makes it: a veth whose host end is `host_end`, in the bridge."""
    ip("-n", host_ns, "link", "add", host_end, "type", "veth", "peer", "name", "eth0",
       "netns", guest_ns)
    ip("-n", host_ns, "link", "set", host_end, "master", bridge_name(NETWORK), "up")
    ip("-n", guest_ns, "link", "set", "eth0", "address", port.mac_address, "mtu", "1450", "up")
    ip("-n", guest_ns, "addr", "add", f"{port.ip_address}/24", "dev", "eth0")


def _pings(ns: str, address: str) -> bool:
    return subprocess.run(["ip", "netns", "exec", ns, BUSYBOX, "ping", "-c1", "-W1", address],
                          capture_output=True, timeout=20, check=False).returncode == 0


def test_a_container_nic_not_yet_named_as_its_port_carries_nothing_until_it_is(tmp_path):
    """A VM (its tap named as its port) and a container whose veth libvirt named vnet5, both
    ports allowing ICMP: no ping either way while the container's NIC is vnet5, although its port
    allows it and the host's FORWARD policy accepts (nothing of its port matches vnet5: it fails
    closed, not open); once renamed as its port's tap, its port's rules apply and pings pass."""
    tag = uuid.uuid4().hex[:6]
    host_ns, vm_ns, ct_ns = f"kumo-fc-{tag}", f"kumo-fcv-{tag}", f"kumo-fcc-{tag}"
    for ns in (host_ns, vm_ns, ct_ns):
        ip("netns", "add", ns)
        ip("-n", ns, "link", "set", "lo", "up")
    driver = LinuxBridgeDriver(state_dir=tmp_path / "network", netns=host_ns,
                               tunnel_ip="192.0.2.1")
    try:
        vm, ct = (_port(PORT_A, "fa:16:3e:77:00:01", "10.77.7.11"),
                  _port(PORT_B, "fa:16:3e:77:00:02", "10.77.7.12"))
        driver.plug("inst-fc", [vm, ct])
        _guest(host_ns, vm_ns, tap_name(PORT_A), vm)
        _guest(host_ns, ct_ns, "vnet5", ct)
        assert not _pings(vm_ns, "10.77.7.12")
        assert not _pings(ct_ns, "10.77.7.11")
        assert driver.name_device("vnet5", tap_name(PORT_B), bridge_name(NETWORK)) is True
        deadline = time.monotonic() + 5
        while not _pings(vm_ns, "10.77.7.12"):
            assert time.monotonic() < deadline, "the renamed veth never carried a ping"
        assert _pings(ct_ns, "10.77.7.11")
    finally:
        try:
            driver.cleanup()
        finally:
            for ns in (ct_ns, vm_ns, host_ns):
                ip("netns", "del", ns, check=False)
