"""Containers beside VMs (issue 19): a stack with one qemu host (compute-1) and one container host
(lxc-1, libvirt's LXC driver in its own namespaces), the tiny container and the tiny VM, through
the compute API a user has.

A container boots to its banner (its hostname and uuid) on the console log the API returns, stops,
starts and is deleted leaving no domain, mount, cgroup or file on its host; the scheduler keeps
each image on its kind of host and, when that host is disabled, says so in the fault.
"""

from __future__ import annotations

import base64
import contextlib
import re
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.lxc import (
    FIGURES,
    TIMEOUT,
    V,
    action,
    boot,
    console,
    host_of,
    rss_mib,
    set_enabled,
    wait_console,
)
from tests.stack import ApiClient

libvirt = pytest.importorskip("libvirt")


@pytest.fixture
def cloud(lxc_cloud):
    return lxc_cloud


def test_the_container_host_reports_its_hypervisor_type(cloud):
    _, api, _, _ = cloud
    found = api.get(f"{V}/os-hypervisors/detail").json()["hypervisors"]
    kinds = {h["service"]["host"]: h["hypervisor_type"] for h in found}
    assert kinds == {"compute-1": "QEMU", "lxc-1": "LXC"}


def test_a_container_boots_to_its_banner_stops_starts_and_leaves_nothing(cloud):
    stack, api, vm_image, ct_image = cloud
    started = time.monotonic()
    ct = boot(api, "ct1", ct_image)
    vm_started = time.monotonic()
    vm = boot(api, "vm1", vm_image)
    assert api.wait_for(ct, {"ACTIVE", "ERROR"}, timeout=TIMEOUT)["status"] == "ACTIVE"
    FIGURES["container create to ACTIVE (s)"] = round(time.monotonic() - started, 2)
    text = wait_console(api, ct, rf"kumo-tiny-ct: ct1 {ct} up")
    FIGURES["container create to banner (s)"] = round(time.monotonic() - started, 2)
    assert api.wait_for(vm, {"ACTIVE", "ERROR"}, timeout=TIMEOUT)["status"] == "ACTIVE"
    FIGURES["VM create to ACTIVE (s)"] = round(time.monotonic() - vm_started, 2)
    wait_console(api, vm, "KUMO TINY GUEST")
    FIGURES["VM create to banner (s)"] = round(time.monotonic() - vm_started, 2)
    assert (host_of(api, ct), host_of(api, vm)) == ("lxc-1", "compute-1")
    time.sleep(2)  # idle: the container's init waits, the VM's shell sits at its prompt
    FIGURES["idle RSS, container: libvirt_lxc and its processes (MiB)"] = rss_mib(
        "libvirt_lxc", ct)
    FIGURES["idle RSS, tiny VM: its qemu (MiB)"] = rss_mib("qemu-system", vm)

    action(api, ct, {"os-stop": None})
    assert api.wait_for(ct, {"SHUTOFF", "ERROR"}, timeout=TIMEOUT)["status"] == "SHUTOFF"
    action(api, ct, {"os-start": None})
    assert api.wait_for(ct, {"ACTIVE", "ERROR"}, timeout=TIMEOUT)["status"] == "ACTIVE"
    text = wait_console(api, ct, rf"kumo-tiny-ct: ct1 {ct} up", count=2)
    assert "kumo-tiny-ct: stopping" in text  # a clean stop: init heard SIGTERM

    host = next(h for h in stack.hosts if h.name == "lxc-1")
    pid = host.libvirtd_pid()
    api.delete(f"{V}/servers/{ct}")
    api.wait_gone(ct, timeout=TIMEOUT)
    api.delete(f"{V}/servers/{vm}")
    api.wait_gone(vm, timeout=TIMEOUT)
    conn = libvirt.open(host.uri)
    try:
        assert conn.listAllDomains() == []
    finally:
        conn.close()
    assert not (host.dir / "instances" / ct).exists()
    assert ct not in Path(f"/proc/{pid}/mounts").read_text()
    with contextlib.suppress(FileNotFoundError):
        cgroups = subprocess.run(["nsenter", "-t", str(pid), "-m", "--", "ls",
                                  "/sys/fs/cgroup/memory/machine"],
                                 capture_output=True, text=True, check=False).stdout
        assert ct not in cgroups


@pytest.mark.parametrize(("kind", "full_host"), [("vm", "compute-1"), ("ct", "lxc-1")])
def test_an_image_never_lands_on_the_other_kind_of_host(cloud, kind, full_host):
    _, api, vm_image, ct_image = cloud
    set_enabled(api, full_host, False)
    try:
        server = boot(api, f"{kind}-nowhere", vm_image if kind == "vm" else ct_image)
        found = api.wait_for(server, {"ACTIVE", "ERROR"}, timeout=TIMEOUT)
        assert found["status"] == "ERROR"
        assert found["OS-EXT-SRV-ATTR:host"] is None
        assert "ImagePropertiesFilter removed 1 of 2 hosts" in found["fault"]["message"]
        api.delete(f"{V}/servers/{server}")
        api.wait_gone(server, timeout=TIMEOUT)
    finally:
        set_enabled(api, full_host, True)


N = "/network/v2.0"
CT_NET = "192.168.77"
CT_IP, VM_IP = f"{CT_NET}.21", f"{CT_NET}.22"


def create(api: ApiClient, kind: str, body: dict) -> dict:
    answer = api.post(f"{N}/{kind.replace('_', '-')}s", {kind: body})
    assert answer.status_code == 201, answer.text
    return answer.json()[kind]


def boot_on(api: ApiClient, name: str, image: str, network: str, address: str, group: str,
            user_data: str = "") -> str:
    server: dict = {"name": name, "imageRef": image, "flavorRef": "1",
                    "networks": [{"uuid": network, "fixed_ip": address}],
                    "security_groups": [{"name": group}]}
    if user_data:
        server["user_data"] = base64.b64encode(user_data.encode()).decode()
    created = api.post(f"{V}/servers", {"server": server})
    assert created.status_code == 202, created.text
    return created.json()["server"]["id"]


def wait_probe(api: ApiClient, server_id: str, result: str, consecutive: int = 3,
               timeout: float = 60) -> float:
    """Seconds until the VM's probe of the container printed `result` `consecutive` times in
    a row, counting only what it printed from now on."""
    started = time.monotonic()
    before = len(re.findall(r"PROBE ct (ok|fail)", console(api, server_id)))
    while True:
        seen = re.findall(r"PROBE ct (ok|fail)", console(api, server_id))[before:]
        if len(seen) >= consecutive and set(seen[-consecutive:]) == {result}:
            return time.monotonic() - started
        assert time.monotonic() - started < timeout, f"PROBE ct never {result}: {seen[-6:]}"
        time.sleep(0.5)


def test_a_container_on_a_tenant_network_gets_its_address_by_dhcp_and_its_security_groups_hold(
        cloud):
    """The container's NIC is a port like a VM's: DHCP gives it the address IPAM chose, a VM on
    the same network (on the other host, over VXLAN) reaches it, and its security group decides
    whether the VM's pings get through: none while the group has no ICMP rule, all once it has
    one, none again when it is removed."""
    stack, api, vm_image, ct_image = cloud
    network = create(api, "network", {"name": "ct-net"})
    create(api, "subnet", {"network_id": network["id"], "cidr": f"{CT_NET}.0/24",
                           "ip_version": 4, "gateway_ip": f"{CT_NET}.1"})
    guard = create(api, "security_group", {"name": "ct-guard"})
    probe = "\n".join([
        "#!/bin/sh", "while :; do",
        (f"  if ping -c1 -W1 {CT_IP} >/dev/null 2>&1; then echo 'PROBE ct ok';"
         " else echo 'PROBE ct fail'; fi"),
        "  sleep 1", "done", ""])
    started = time.monotonic()
    ct = boot_on(api, "ct-net-1", ct_image, network["id"], CT_IP, "ct-guard")
    vm = boot_on(api, "vm-net-1", vm_image, network["id"], VM_IP, "default", user_data=probe)
    try:
        assert api.wait_for(ct, {"ACTIVE", "ERROR"}, timeout=TIMEOUT)["status"] == "ACTIVE"
        wait_console(api, ct, rf"kumo-tiny-ct: address eth0 {re.escape(CT_IP)}/24")
        FIGURES["container on a network, create to DHCP lease (s)"] = round(
            time.monotonic() - started, 2)
        # Its host end is its port's tap in the network's bridge, as a VM's is.
        (port,) = api.get(f"{N}/ports?device_id={ct}").json()["ports"]
        host = next(h for h in stack.hosts if h.name == "lxc-1")
        members = subprocess.run(
            ["ip", "-n", host.netns, "-o", "link", "show", "master",
             "brq" + network["id"][:11]], capture_output=True, text=True, check=False).stdout
        assert f"tap{port['id'][:11]}" in members, members

        assert api.wait_for(vm, {"ACTIVE", "ERROR"}, timeout=TIMEOUT)["status"] == "ACTIVE"
        wait_console(api, vm, r"PROBE ct (ok|fail)")
        wait_probe(api, vm, "fail")
        rule = create(api, "security_group_rule", {
            "security_group_id": guard["id"], "direction": "ingress", "ethertype": "IPv4",
            "protocol": "icmp", "remote_ip_prefix": "0.0.0.0/0"})
        FIGURES["ICMP rule to the container's pings passing (s)"] = round(
            wait_probe(api, vm, "ok"), 1)
        assert api.delete(f"{N}/security-group-rules/{rule['id']}").status_code == 204
        FIGURES["ICMP rule removed to the pings stopping (s)"] = round(
            wait_probe(api, vm, "fail"), 1)
    finally:
        for server in (ct, vm):
            api.delete(f"{V}/servers/{server}")
        for server in (ct, vm):
            api.wait_gone(server, timeout=TIMEOUT)
        api.delete(f"{N}/security-groups/{guard['id']}")
        api.delete(f"{N}/networks/{network['id']}")
