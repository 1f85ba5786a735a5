"""The Network API announces what the data plane must hear (cloud/network/dataplane.py's
signals): changed ports, groups whose rules or members changed, routers, removed ports."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cloud.network import dataplane
from cloud.network.models import Port

N = "/network/v2.0"


@pytest.fixture
def heard() -> Iterator[dict[str, list]]:
    got: dict[str, list] = {"ports": [], "groups": [], "router": [], "router_removed": [],
                            "port_removed": []}

    def ports(sender, port_ids, **_):
        got["ports"].extend(port_ids)

    def groups(sender, group_ids, **_):
        got["groups"].extend(group_ids)

    def router(sender, router_id, **_):
        got["router"].append(router_id)

    def router_removed(sender, router_id, host, **_):
        got["router_removed"].append((router_id, host))

    def port_removed(sender, port_id, host, **_):
        got["port_removed"].append((port_id, host))

    pairs = [(dataplane.PORTS_CHANGED, ports), (dataplane.GROUPS_CHANGED, groups),
             (dataplane.ROUTER_CHANGED, router), (dataplane.ROUTER_REMOVED, router_removed),
             (dataplane.PORT_REMOVED, port_removed)]
    for signal, receiver in pairs:
        signal.connect(receiver)
    yield got
    for signal, receiver in pairs:
        signal.disconnect(receiver)


def test_port_and_group_changes_are_announced(api_as, nets, admin, member, heard):
    api = api_as(member)
    port = api.post(f"{N}/ports", {"port": {"network_id": str(nets["alpha"].id)}}).json()["port"]
    assert port["id"] in heard["ports"]
    (default,) = port["security_groups"]
    assert default in heard["groups"]
    heard["groups"].clear()
    api.post(f"{N}/security-group-rules", {"security_group_rule": {
        "security_group_id": default, "direction": "ingress", "protocol": "tcp",
        "port_range_min": 22, "port_range_max": 22}})
    assert heard["groups"] == [default]
    Port.objects.filter(pk=port["id"]).update(binding_host="hn-1")
    assert api.delete(f"{N}/ports/{port['id']}").status_code == 204
    assert heard["port_removed"] == [(port["id"], "hn-1")]


def test_router_changes_are_announced(api_as, nets, member, heard):
    api = api_as(member)
    router = api.post(f"{N}/routers", {"router": {"external_gateway_info": {
        "network_id": str(nets["public"].id)}}}).json()["router"]
    assert router["id"] in heard["router"]
    heard["router"].clear()
    subnet = str(nets["alpha"].subnets.get().id)
    api.put(f"{N}/routers/{router['id']}/add_router_interface", {"subnet_id": subnet})
    assert heard["router"] == [router["id"]]
    port = api.post(f"{N}/ports", {"port": {"network_id": str(nets["alpha"].id)}}).json()["port"]
    heard["router"].clear()
    fip = api.post(f"{N}/floatingips", {"floatingip": {
        "floating_network_id": str(nets["public"].id), "port_id": port["id"]}}).json()
    assert heard["router"] == [router["id"]]
    heard["router"].clear()
    api.delete(f"{N}/floatingips/{fip['floatingip']['id']}")
    assert heard["router"] == [router["id"]]
    api.put(f"{N}/routers/{router['id']}/remove_router_interface", {"subnet_id": subnet})
    assert api.delete(f"{N}/routers/{router['id']}").status_code == 204
    assert [r for r, _ in heard["router_removed"]] == [router["id"]]
