"""Routers and floating IPs (cloud/network/routers.py, floating_ips.py) over Neutron's API: the
gateway port from the external subnet, interfaces by subnet or port, extra routes, the 409s that
keep a router in use, floating IP association through a router's gateway, and tenancy."""

from __future__ import annotations

import uuid

import pytest

from cloud.network.models import Port

N = "/network/v2.0"


def error(response, status: int, kind: str | None = None) -> dict:
    assert response.status_code == status, response.content
    body = response.json()["NeutronError"]
    if kind:
        assert body["type"] == kind, body
    return body


def ok(response, status: int = 200) -> dict:
    assert response.status_code == status, response.content
    return response.json()


@pytest.fixture
def world(api_as, nets, admin, member):
    """alpha's network 10.2.0.0/24 (nets["alpha"]), the external network "public" 203.0.113.0/24,
    a router of alpha's with its gateway there, and one port of alpha's on its network."""
    api = api_as(member)
    router = ok(api.post(f"{N}/routers", {"router": {"name": "r", "external_gateway_info": {
        "network_id": str(nets["public"].id)}}}), 201)["router"]
    port = ok(api.post(f"{N}/ports", {"port": {"network_id": str(nets["alpha"].id)}}), 201)["port"]
    return {"api": api, "router": router, "port": port, "subnet": str(nets["alpha"].subnets.get().id),
            "public": str(nets["public"].id), "alpha": str(nets["alpha"].id)}


def test_router_gateway_comes_from_the_external_subnet(world):
    info = world["router"]["external_gateway_info"]
    assert info["network_id"] == world["public"] and info["enable_snat"] is True
    (fixed,) = info["external_fixed_ips"]
    assert fixed["ip_address"] == "203.0.113.2"  # .1 is the external subnet's gateway
    gateway = Port.objects.get(device_id=world["router"]["id"])
    assert gateway.device_owner == "network:router_gateway" and gateway.project_id is None


def test_interface_by_subnet_takes_the_gateway_address(world, api_as, other):
    api, router = world["api"], world["router"]
    added = ok(api.put(f"{N}/routers/{router['id']}/add_router_interface",
                       {"subnet_id": world["subnet"]}))
    assert added["subnet_id"] == world["subnet"] and added["id"] == router["id"]
    port = ok(api.get(f"{N}/ports/{added['port_id']}"))["port"]
    assert port["fixed_ips"] == [{"subnet_id": world["subnet"], "ip_address": "10.2.0.1"}]
    assert port["device_owner"] == "network:router_interface"
    # the subnet is attached: again 400 for this router, 409 for another (the gateway is taken)
    error(api.put(f"{N}/routers/{router['id']}/add_router_interface",
                  {"subnet_id": world["subnet"]}), 400)
    second = ok(api.post(f"{N}/routers", {"router": {"name": "r2"}}), 201)["router"]
    error(api.put(f"{N}/routers/{second['id']}/add_router_interface",
                  {"subnet_id": world["subnet"]}), 409, "IpAddressAlreadyAllocated")
    # in use: no delete of the router or of the interface port
    error(api.delete(f"{N}/routers/{router['id']}"), 409, "RouterInUse")
    error(api.delete(f"{N}/ports/{added['port_id']}"), 409, "L3PortInUse")
    error(api_as(other).put(f"{N}/routers/{router['id']}/add_router_interface",
                            {"subnet_id": world["subnet"]}), 404, "RouterNotFound")
    removed = ok(api.put(f"{N}/routers/{router['id']}/remove_router_interface",
                         {"subnet_id": world["subnet"]}))
    assert removed["port_id"] == added["port_id"]
    error(api.put(f"{N}/routers/{router['id']}/remove_router_interface",
                  {"subnet_id": world["subnet"]}), 404, "RouterInterfaceNotFoundForSubnet")
    assert api.delete(f"{N}/routers/{router['id']}").status_code == 204
    assert not Port.objects.filter(device_id=router["id"]).exists()


def test_interface_by_port_and_bad_interface_requests(world):
    api, router = world["api"], world["router"]
    error(api.put(f"{N}/routers/{router['id']}/add_router_interface", {}), 400)
    error(api.put(f"{N}/routers/{router['id']}/add_router_interface",
                  {"subnet_id": world["subnet"], "port_id": world["port"]["id"]}), 400)
    error(api.put(f"{N}/routers/{router['id']}/add_router_interface",
                  {"subnet_id": str(uuid.uuid4())}), 404)
    added = ok(api.put(f"{N}/routers/{router['id']}/add_router_interface",
                       {"port_id": world["port"]["id"]}))
    assert added["port_id"] == world["port"]["id"]
    port = ok(api.get(f"{N}/ports/{world['port']['id']}"))["port"]
    assert port["device_id"] == router["id"] and port["security_groups"] == []
    ok(api.put(f"{N}/routers/{router['id']}/remove_router_interface",
               {"port_id": world["port"]["id"]}))
    error(api.get(f"{N}/ports/{world['port']['id']}"), 404)


def test_extra_routes_need_an_attached_nexthop(world):
    api, router = world["api"], world["router"]
    routes = {"routes": [{"destination": "172.16.0.0/16", "nexthop": "10.2.0.9"}]}
    error(api.put(f"{N}/routers/{router['id']}", {"router": routes}), 400, "InvalidRoutes")
    ok(api.put(f"{N}/routers/{router['id']}/add_router_interface", {"subnet_id": world["subnet"]}))
    changed = ok(api.put(f"{N}/routers/{router['id']}", {"router": routes}))["router"]
    assert changed["routes"] == routes["routes"]
    error(api.put(f"{N}/routers/{router['id']}/remove_router_interface",
                  {"subnet_id": world["subnet"]}), 409, "RouterInterfaceInUseByRoute")
    error(api.put(f"{N}/routers/{router['id']}", {"router": {"routes": "x"}}), 400)


def test_gateway_set_and_clear(world, api_as, nets):
    api, router = world["api"], world["router"]
    cleared = ok(api.put(f"{N}/routers/{router['id']}", {"router": {
        "external_gateway_info": {}}}))["router"]
    assert cleared["external_gateway_info"] is None
    assert not Port.objects.filter(device_id=router["id"]).exists()
    error(api.put(f"{N}/routers/{router['id']}", {"router": {"external_gateway_info": {
        "network_id": world["alpha"]}}}), 400)
    error(api.put(f"{N}/routers/{router['id']}", {"router": {"external_gateway_info": {
        "network_id": world["public"], "enable_snat": False}}}), 403)


def test_floating_ip_lifecycle(world, api_as, other):
    api, router = world["api"], world["router"]
    fip = ok(api.post(f"{N}/floatingips", {"floatingip": {
        "floating_network_id": world["public"]}}), 201)["floatingip"]
    assert fip["status"] == "DOWN" and fip["port_id"] is None
    assert fip["floating_ip_address"].startswith("203.0.113.")
    # not reachable: the port's subnet is not on a router with a gateway there
    error(api.put(f"{N}/floatingips/{fip['id']}", {"floatingip": {"port_id": world["port"]["id"]}}),
          404, "ExternalGatewayForFloatingIPNotFound")
    ok(api.put(f"{N}/routers/{router['id']}/add_router_interface", {"subnet_id": world["subnet"]}))
    associated = ok(api.put(f"{N}/floatingips/{fip['id']}", {"floatingip": {
        "port_id": world["port"]["id"]}}))["floatingip"]
    assert associated["status"] == "ACTIVE" and associated["router_id"] == router["id"]
    assert associated["fixed_ip_address"] == world["port"]["fixed_ips"][0]["ip_address"]
    listed = api.get(f"{N}/floatingips?port_id={world['port']['id']}").json()["floatingips"]
    assert [f["id"] for f in listed] == [fip["id"]]
    assert api.get(f"{N}/floatingips?status=DOWN").json()["floatingips"] == []
    # the router and its interface are now in use by the floating IP
    error(api.put(f"{N}/routers/{router['id']}/remove_router_interface",
                  {"subnet_id": world["subnet"]}), 409, "RouterInterfaceInUseByFloatingIP")
    error(api.put(f"{N}/routers/{router['id']}", {"router": {"external_gateway_info": {}}}),
          409, "RouterExternalGatewayInUseByFloatingIp")
    error(api_as(other).get(f"{N}/floatingips/{fip['id']}"), 404, "FloatingIPNotFound")
    error(api_as(other).delete(f"{N}/floatingips/{fip['id']}"), 404)
    second = ok(api.post(f"{N}/floatingips", {"floatingip": {
        "floating_network_id": world["public"]}}), 201)["floatingip"]
    error(api.put(f"{N}/floatingips/{second['id']}", {"floatingip": {
        "port_id": world["port"]["id"]}}), 409, "FloatingIPPortAlreadyAssociated")
    down = ok(api.put(f"{N}/floatingips/{fip['id']}", {"floatingip": {"port_id": None}}))
    assert down["floatingip"]["status"] == "DOWN" and down["floatingip"]["router_id"] is None
    # deleting the port takes its floating IP off it
    ok(api.put(f"{N}/floatingips/{second['id']}", {"floatingip": {"port_id": world["port"]["id"]}}))
    assert api.delete(f"{N}/ports/{world['port']['id']}").status_code == 204
    assert ok(api.get(f"{N}/floatingips/{second['id']}"))["floatingip"]["port_id"] is None
    assert api.delete(f"{N}/floatingips/{fip['id']}").status_code == 204
    assert not Port.objects.filter(device_id=fip["id"]).exists()


def test_floating_ip_with_an_address_and_bad_requests(world):
    api = world["api"]
    fip = ok(api.post(f"{N}/floatingips", {"floatingip": {
        "floating_network_id": world["public"], "floating_ip_address": "203.0.113.77"}}), 201)
    assert fip["floatingip"]["floating_ip_address"] == "203.0.113.77"
    error(api.post(f"{N}/floatingips", {"floatingip": {
        "floating_network_id": world["public"], "floating_ip_address": "203.0.113.77"}}), 409)
    error(api.post(f"{N}/floatingips", {"floatingip": {"floating_network_id": world["alpha"]}}),
          400)
    error(api.post(f"{N}/floatingips", {"floatingip": {}}), 400)
    error(api.post(f"{N}/floatingips", {"floatingip": {"floating_network_id": "x"}}), 400)
    error(api.put(f"{N}/floatingips/{fip['floatingip']['id']}", {"floatingip": {
        "floating_ip_address": "203.0.113.78"}}), 400)


def test_router_and_floating_ip_quotas(api_as, admin, member, nets):
    api_as(admin).put(f"{N}/quotas/{member.project.id}", {"quota": {"router": 1, "floatingip": 1}})
    api = api_as(member)
    ok(api.post(f"{N}/routers", {"router": {}}), 201)
    error(api.post(f"{N}/routers", {"router": {}}), 409, "OverQuota")
    ok(api.post(f"{N}/floatingips", {"floatingip": {
        "floating_network_id": str(nets["public"].id)}}), 201)
    error(api.post(f"{N}/floatingips", {"floatingip": {
        "floating_network_id": str(nets["public"].id)}}), 409, "OverQuota")


def test_routers_of_another_project_are_missing(world, api_as, other, reader):
    rid = world["router"]["id"]
    for call in (api_as(other).get(f"{N}/routers/{rid}"),
                 api_as(other).put(f"{N}/routers/{rid}", {"router": {"name": "x"}}),
                 api_as(other).delete(f"{N}/routers/{rid}")):
        error(call, 404, "RouterNotFound")
    error(api_as(reader).put(f"{N}/routers/{rid}", {"router": {"name": "x"}}), 403)
    error(api_as(reader).delete(f"{N}/routers/{rid}"), 403)
    assert api_as(other).get(f"{N}/routers").json()["routers"] == []
