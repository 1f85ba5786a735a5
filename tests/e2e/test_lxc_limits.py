"""A container's limits and its NIC across reboots (issue 19), on the shared LXC stack
(tests/e2e/lxc.py): one container host lxc-1, the tiny container on a tenant network whose
security group allows no ICMP, its user data (which the tiny container's init fetches from the
metadata service) run inside it.

* The flavor's memory is the container's: a process inside it that grows past the flavor's RAM is
  killed by the kernel's OOM killer in the container's memory cgroup, while the container's init
  and the rest of its processes go on, the server stays ACTIVE and the host's libvirtd answers.
  The cgroup's memory limit is the flavor's RAM and its CPU shares 1024 per vCPU.
* A container that reboots by itself (its init asks the kernel to), and one rebooted through the
  API soft and hard, comes back with its host-side veth named as its port's tap again, so its
  port's rules hold: DHCP gives it its address again, and a ping from the network's DHCP
  namespace is refused (the group has no ICMP rule) until an ICMP rule is added.
"""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.lxc import (
    FIGURES,
    TIMEOUT,
    V,
    action,
    cgroup_value,
    host_of,
    lxc_host,
    wait_console,
)
from tests.stack import ApiClient, Stack

libvirt = pytest.importorskip("libvirt")

N = "/network/v2.0"
BUSYBOX = shutil.which("busybox") or "/bin/busybox"
NET = "192.168.79"
RAM_MB, VCPUS = 96, 2
# The hog: `tail` keeps a "line" of /dev/zero's newline-less bytes whole, so it grows until it
# has them all (400 MiB) or is killed. Its shell outlives it and says how it ended (137: SIGKILL),
# then beats once a second: the container goes on.
HOG = """#!/bin/sh
echo "HOG start"
head -c 400m /dev/zero | tail >/dev/null
echo "HOG exit $?"
while :; do echo "ALIVE $(cat /proc/uptime)"; sleep 1; done
"""
# Reboots itself once (a marker in the root filesystem, which survives the reboot; /run does
# not): `reboot -f` is the reboot(2) call, which in a container's PID namespace ends its init
# as a reboot, and libvirt starts the container again (on_reboot restart).
SELF_REBOOT = """#!/bin/sh
if [ ! -e /var/rebooted-once ]; then
    : > /var/rebooted-once
    echo "SELF reboot"
    sync
    reboot -f
fi
echo "SELF back"
"""


@pytest.fixture(scope="module")
def net(lxc_cloud):
    """(network, security group without ICMP, flavor id) for this module's containers."""
    _, api, _, _ = lxc_cloud
    network = _create(api, "network", {"name": "ct-limits"})
    _create(api, "subnet", {"network_id": network["id"], "cidr": f"{NET}.0/24",
                            "ip_version": 4, "gateway_ip": f"{NET}.1"})
    group = _create(api, "security_group", {"name": "ct-limits"})
    flavor = api.post(f"{V}/flavors", {"flavor": {
        "name": "ct.limits", "ram": RAM_MB, "vcpus": VCPUS, "disk": 1}})
    assert flavor.status_code == 200, flavor.text
    flavor_id = flavor.json()["flavor"]["id"]
    yield network, group, flavor_id
    api.delete(f"{V}/flavors/{flavor_id}")
    api.delete(f"{N}/security-groups/{group['id']}")
    api.delete(f"{N}/networks/{network['id']}")


def _create(api: ApiClient, kind: str, body: dict) -> dict:
    answer = api.post(f"{N}/{kind.replace('_', '-')}s", {kind: body})
    assert answer.status_code == 201, answer.text
    return answer.json()[kind]


def _boot(api: ApiClient, name: str, image: str, net, address: str, user_data: str) -> str:
    network, group, flavor_id = net
    created = api.post(f"{V}/servers", {"server": {
        "name": name, "imageRef": image, "flavorRef": flavor_id,
        "networks": [{"uuid": network["id"], "fixed_ip": address}],
        "security_groups": [{"name": group["name"]}],
        "user_data": base64.b64encode(user_data.encode()).decode()}})
    assert created.status_code == 202, created.text
    return created.json()["server"]["id"]


def _delete(api: ApiClient, server_id: str) -> None:
    api.delete(f"{V}/servers/{server_id}")
    api.wait_gone(server_id, timeout=TIMEOUT)


def _domain_running(stack: Stack, server_id: str) -> tuple[bool, int]:
    """(running, its libvirt_lxc controller's pid), through lxc-1's libvirtd."""
    conn = libvirt.open(lxc_host(stack).uri)
    try:
        domain = conn.lookupByUUIDString(server_id)
        return bool(domain.isActive()), domain.ID()
    finally:
        conn.close()


def test_a_process_above_the_flavors_memory_is_killed_inside_the_container_only(lxc_cloud, net):
    stack, api, _, ct_image = lxc_cloud
    server = _boot(api, "ct-hog", ct_image, net, f"{NET}.31", HOG)
    try:
        assert api.wait_for(server, {"ACTIVE", "ERROR"}, timeout=TIMEOUT)["status"] == "ACTIVE"
        assert host_of(api, server) == "lxc-1"
        libvirtd = lxc_host(stack).libvirtd_pid()
        started = time.monotonic()
        text = wait_console(api, server, r"HOG exit \d+")
        FIGURES["user data's hog to its OOM kill (s)"] = round(time.monotonic() - started, 2)
        assert "HOG exit 137" in text, text[-800:]  # 128 + SIGKILL
        running, domain_id = _domain_running(stack, server)
        assert running
        # The cgroup's limits are the flavor's, and it is its OOM killer that struck.
        assert int(cgroup_value(stack, "memory", server, "memory.limit_in_bytes")) == \
            RAM_MB * 1024 * 1024
        assert int(cgroup_value(stack, "cpu", server, "cpu.shares")) == 1024 * VCPUS
        oom = cgroup_value(stack, "memory", server, "memory.oom_control")
        assert re.search(r"^oom_kill [1-9]", oom, re.MULTILINE), oom
        # The container goes on: its processes beat, the server stays ACTIVE in the same run.
        wait_console(api, server, r"ALIVE \d", count=3)
        assert api.get(f"{V}/servers/{server}").json()["server"]["status"] == "ACTIVE"
        assert _domain_running(stack, server) == (True, domain_id)
        # The host is unaffected: the same libvirtd answered above and is still there.
        assert lxc_host(stack).libvirtd_pid() == libvirtd and Path(f"/proc/{libvirtd}").exists()
    finally:
        _delete(api, server)


def _tap_of(api: ApiClient, server_id: str) -> tuple[str, str]:
    (port,) = api.get(f"{N}/ports?device_id={server_id}").json()["ports"]
    return "tap" + port["id"][:11], "brq" + port["network_id"][:11]


def _bridge_members(stack: Stack, bridge: str) -> list[str]:
    out = subprocess.run(["ip", "-n", lxc_host(stack).netns, "-o", "link", "show", "master",
                          bridge], capture_output=True, text=True, check=False).stdout
    return [line.split(":")[1].strip().split("@")[0] for line in out.splitlines()]


def _dhcp_pings(network_id: str, address: str) -> bool:
    """Whether a ping from lxc-1's DHCP namespace of the network reaches `address`."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        # Only lxc-1 has a port on this module's network, so only it serves the network.
        if argv[0].endswith(b"dnsmasq") and any(network_id.encode() in w for w in argv):
            done = subprocess.run(["nsenter", "-t", entry.name, "-n", "--", BUSYBOX, "ping",
                                   "-c1", "-W1", address], capture_output=True, text=True,
                                  timeout=10, check=False)
            assert "applet not found" not in done.stderr and "failed to execute" not in \
                done.stderr, done.stderr
            return done.returncode == 0
    raise AssertionError(f"no DHCP server of {network_id} on lxc-1")


def test_a_container_rebooted_keeps_its_nic_named_as_its_port(lxc_cloud, net):
    stack, api, _, ct_image = lxc_cloud
    address = f"{NET}.32"
    lease = rf"kumo-tiny-ct: address eth0 {re.escape(address)}/24"
    server = _boot(api, "ct-reboot", ct_image, net, address, SELF_REBOOT)
    try:
        assert api.wait_for(server, {"ACTIVE", "ERROR"}, timeout=TIMEOUT)["status"] == "ACTIVE"
        tap, bridge = _tap_of(api, server)
        wait_console(api, server, "SELF reboot")
        started = time.monotonic()
        # Back by itself: its banner again, its lease again (DHCP through its port's rules).
        wait_console(api, server, lease, count=2)
        FIGURES["container's own reboot to its lease again (s)"] = round(
            time.monotonic() - started, 2)
        wait_console(api, server, "SELF back")
        members = _bridge_members(stack, bridge)
        assert tap in members and not [m for m in members if m.startswith("vnet")], members
        assert not _dhcp_pings(net[0]["id"], address)  # its group has no ICMP rule
        for n, kind in enumerate(("SOFT", "HARD"), start=3):
            action(api, server, {"reboot": {"type": kind}})
            assert api.wait_for(server, {"ACTIVE", "ERROR"}, timeout=TIMEOUT)["status"] == \
                "ACTIVE"
            wait_console(api, server, lease, count=n)
            members = _bridge_members(stack, bridge)
            assert tap in members and not [m for m in members if m.startswith("vnet")], members
            assert not _dhcp_pings(net[0]["id"], address)
        rule = _create(api, "security_group_rule", {
            "security_group_id": net[1]["id"], "direction": "ingress", "ethertype": "IPv4",
            "protocol": "icmp", "remote_ip_prefix": "0.0.0.0/0"})
        try:
            deadline = time.monotonic() + 20
            while not _dhcp_pings(net[0]["id"], address):
                assert time.monotonic() < deadline, "the ICMP rule never let a ping through"
                time.sleep(0.5)
        finally:
            api.delete(f"{N}/security-group-rules/{rule['id']}")
    finally:
        _delete(api, server)
