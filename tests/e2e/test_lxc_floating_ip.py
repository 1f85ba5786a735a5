"""A container reached from outside through its floating IP (issue 19: "floating IPs exactly as for
a VM"): on a tenant network behind a router whose gateway is on the external network, the
outside world's namespace pings the container's floating IP only while its security group allows
ICMP, and nothing answers on that address once the floating IP is released."""

from __future__ import annotations

import re
import subprocess
import time

from simhosts.hosts import outside_ns
from tests.e2e.lxc import TIMEOUT, V, host_of, wait_console
from tests.e2e.multihost import wait_until
from tests.stack import ApiClient, Stack

N = "/network/v2.0"
NET = "192.168.78"


def create(api: ApiClient, kind: str, body: dict) -> dict:
    answer = api.post(f"{N}/{kind.replace('_', '-')}s", {kind: body})
    assert answer.status_code == 201, answer.text
    return answer.json()[kind]


def pings(stack: Stack, address: str) -> bool:
    # busybox: the machine has no iputils (scripts/setup.sh installs busybox-static).
    done = subprocess.run(["ip", "netns", "exec", outside_ns(stack.host_tag), "busybox", "ping",
                           "-c1", "-W1", address], capture_output=True, timeout=15, check=False)
    return done.returncode == 0


def test_a_container_answers_on_its_floating_ip_only_as_its_security_group_allows(lxc_cloud):
    stack, api, _, ct_image = lxc_cloud
    (public,) = api.get(f"{N}/networks?name=public").json()["networks"]
    network = create(api, "network", {"name": "ct-fip-net"})
    subnet = create(api, "subnet", {"network_id": network["id"], "cidr": f"{NET}.0/24",
                                    "ip_version": 4, "gateway_ip": f"{NET}.1"})
    group = create(api, "security_group", {"name": "ct-fip"})
    router = create(api, "router", {"name": "ct-fip-router",
                                    "external_gateway_info": {"network_id": public["id"]}})
    added = api.put(f"{N}/routers/{router['id']}/add_router_interface",
                    {"subnet_id": subnet["id"]})
    assert added.status_code == 200, added.text
    server, floating = None, None
    try:
        created = api.post(f"{V}/servers", {"server": {
            "name": "ct-fip", "imageRef": ct_image, "flavorRef": "1",
            "networks": [{"uuid": network["id"]}], "security_groups": [{"name": "ct-fip"}]}})
        assert created.status_code == 202, created.text
        server = created.json()["server"]["id"]
        assert api.wait_for(server, {"ACTIVE", "ERROR"}, timeout=TIMEOUT)["status"] == "ACTIVE"
        assert host_of(api, server) == "lxc-1"
        (port,) = api.get(f"{N}/ports?device_id={server}").json()["ports"]
        address = port["fixed_ips"][0]["ip_address"]
        wait_console(api, server, rf"kumo-tiny-ct: address eth0 {re.escape(address)}/24")
        floating = create(api, "floatingip", {"floating_network_id": public["id"],
                                              "port_id": port["id"]})
        fip = floating["floating_ip_address"]

        # No ICMP rule yet: the floating IP's NAT is there, the container's group drops it.
        time.sleep(3)
        assert not pings(stack, fip)
        create(api, "security_group_rule", {
            "security_group_id": group["id"], "direction": "ingress", "ethertype": "IPv4",
            "protocol": "icmp", "remote_ip_prefix": "0.0.0.0/0"})
        wait_until(lambda: pings(stack, fip), f"ping of the container's floating IP {fip}", 30)

        # Released, the address answers no more.
        assert api.delete(f"{N}/floatingips/{floating['id']}").status_code == 204
        floating = None
        wait_until(lambda: not pings(stack, fip), "the released floating IP to stop answering",
                   15)
    finally:
        if floating:
            api.delete(f"{N}/floatingips/{floating['id']}")
        if server:
            api.delete(f"{V}/servers/{server}")
            api.wait_gone(server, timeout=TIMEOUT)
        api.put(f"{N}/routers/{router['id']}/remove_router_interface",
                {"subnet_id": subnet["id"]})
        api.delete(f"{N}/routers/{router['id']}")
        api.delete(f"{N}/security-groups/{group['id']}")
        api.delete(f"{N}/networks/{network['id']}")
