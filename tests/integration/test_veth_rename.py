"""Naming a container's veth as its port's tap (compute_agent/network/veth.py) with the real `ip`:
in a namespace of the test's own, a bridge and a veth pair named as libvirt's LXC driver names
them (vnetN), one end moved into a second namespace as a container's is. The veth gets the tap
name, stays in its bridge and up, and frames still cross it; a bridge or a missing device is
refused and left as it was.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator

import pytest

from compute_agent.network import veth
from compute_agent.network.base import NetworkError
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
