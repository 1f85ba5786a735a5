"""Neutron v2.0 writes of networks, subnets and ports (cloud/network/networks.py, subnets.py,
ports.py): create, change, delete, validation in Neutron's error shape, tenancy and quotas."""

from __future__ import annotations

import uuid

import pytest

from cloud.network.models import Network, Port

N = "/network/v2.0"


def error(response, status: int, kind: str | None = None) -> dict:
    assert response.status_code == status, response.content
    body = response.json()["NeutronError"]
    assert {"type", "message", "detail"} <= set(body)
    if kind:
        assert body["type"] == kind, body
    return body


def made(response, key: str) -> dict:
    assert response.status_code == 201, response.content
    return response.json()[key]


def network(api, **attrs) -> dict:
    return made(api.post(f"{N}/networks", {"network": {"name": "n", **attrs}}), "network")


def subnet(api, net_id: str, cidr: str = "10.50.0.0/24", **attrs) -> dict:
    body = {"network_id": net_id, "cidr": cidr, "ip_version": 4, **attrs}
    return made(api.post(f"{N}/subnets", {"subnet": body}), "subnet")


# --- networks


def test_create_show_update_delete_a_network(api_as, member):
    api = api_as(member)
    net = network(api, name="web", description="front", mtu=1400)
    assert net["project_id"] == member.project.id and net["status"] == "ACTIVE"
    assert net["provider:network_type"] == "vxlan" and net["mtu"] == 1400
    assert net["provider:segmentation_id"] >= 1000
    assert net["port_security_enabled"] is True and net["router:external"] is False
    changed = api.put(f"{N}/networks/{net['id']}", {"network": {"name": "web2", "mtu": 1300}})
    assert changed.status_code == 200, changed.content
    assert changed.json()["network"]["name"] == "web2"
    assert changed.json()["network"]["mtu"] == 1300
    assert api.delete(f"{N}/networks/{net['id']}").status_code == 204
    error(api.get(f"{N}/networks/{net['id']}"), 404, "NetworkNotFound")


def test_each_tenant_network_gets_its_own_vni(api_as, member, other):
    first = network(api_as(member))
    second = network(api_as(other))
    assert {first["provider:segmentation_id"], second["provider:segmentation_id"]} == {1000, 1001}
    api_as(member).delete(f"{N}/networks/{first['id']}")
    third = network(api_as(member))
    assert third["provider:segmentation_id"] == 1000  # the lowest free one again


def test_shared_external_and_provider_attributes_are_for_admins(api_as, admin, member, other):
    for attrs in ({"shared": True}, {"router:external": True},
                  {"provider:network_type": "flat"}):
        error(api_as(member).post(f"{N}/networks", {"network": attrs}), 403)
    ext = network(api_as(admin), **{"router:external": True})
    assert ext["provider:network_type"] == "flat"
    assert ext["provider:physical_network"] == "public"
    assert ext["provider:segmentation_id"] is None and ext["mtu"] == 1500
    # another project sees the external network but may not change or delete it
    assert api_as(other).get(f"{N}/networks/{ext['id']}").status_code == 200
    error(api_as(other).put(f"{N}/networks/{ext['id']}", {"network": {"name": "x"}}), 403)
    error(api_as(other).delete(f"{N}/networks/{ext['id']}"), 403)


@pytest.mark.parametrize("body", [
    {"network": {"name": 5}},
    {"network": {"mtu": 9000}},
    {"network": {"mtu": "lots"}},
    {"network": {"mtu": 10}},
    {"network": {"admin_state_up": "maybe"}},
    {"network": {"bogus": 1}},
    {"network": "x"},
    {"networks": []},
    {"network": {"project_id": "someone-else"}},
])
def test_bad_network_bodies_are_400(api_as, member, body):
    error(api_as(member).post(f"{N}/networks", body), 400)


def test_a_reader_may_not_write(api_as, member, reader):
    net = network(api_as(member))
    error(api_as(reader).post(f"{N}/networks", {"network": {}}), 403, "PolicyNotAuthorized")
    error(api_as(reader).delete(f"{N}/networks/{net['id']}"), 403)
    error(api_as(reader).post(f"{N}/ports", {"port": {"network_id": net["id"]}}), 403)


def test_another_projects_network_is_missing(api_as, member, other):
    net = network(api_as(member))
    error(api_as(other).put(f"{N}/networks/{net['id']}", {"network": {"name": "x"}}), 404,
          "NetworkNotFound")
    error(api_as(other).delete(f"{N}/networks/{net['id']}"), 404)
    error(api_as(other).post(f"{N}/subnets", {"subnet": {
        "network_id": net["id"], "cidr": "10.9.0.0/24"}}), 404)


def test_a_network_with_ports_is_in_use_but_dhcp_ports_go_with_it(api_as, member):
    api = api_as(member)
    net = network(api)
    subnet(api, net["id"])
    port = made(api.post(f"{N}/ports", {"port": {"network_id": net["id"]}}), "port")
    error(api.delete(f"{N}/networks/{net['id']}"), 409, "NetworkInUse")
    api.delete(f"{N}/ports/{port['id']}")
    Port.objects.create(network_id=net["id"], mac_address="fa:16:3e:00:00:01",
                        device_owner="network:dhcp", project_id=member.project.id)
    assert api.delete(f"{N}/networks/{net['id']}").status_code == 204
    assert not Network.objects.filter(pk=net["id"]).exists()
    assert not Port.objects.filter(mac_address="fa:16:3e:00:00:01").exists()


def test_network_quota(api_as, admin, member):
    set_quota = api_as(admin).put(f"{N}/quotas/{member.project.id}", {"quota": {"network": 1}})
    assert set_quota.status_code == 200, set_quota.content
    network(api_as(member))
    error(api_as(member).post(f"{N}/networks", {"network": {}}), 409, "OverQuota")


# --- subnets


def test_create_a_subnet_with_pools_dns_and_routes(api_as, member):
    api = api_as(member)
    net = network(api)
    sub = subnet(api, net["id"], "10.60.0.0/24", name="s", description="d",
                 allocation_pools=[{"start": "10.60.0.10", "end": "10.60.0.20"}],
                 dns_nameservers=["192.0.2.53"],
                 host_routes=[{"destination": "10.99.0.0/16", "nexthop": "10.60.0.254"}])
    assert sub["gateway_ip"] == "10.60.0.1"
    assert sub["allocation_pools"] == [{"start": "10.60.0.10", "end": "10.60.0.20"}]
    assert sub["dns_nameservers"] == ["192.0.2.53"] and sub["description"] == "d"
    assert sub["host_routes"] == [{"destination": "10.99.0.0/16", "nexthop": "10.60.0.254"}]
    port = made(api.post(f"{N}/ports", {"port": {"network_id": net["id"]}}), "port")
    assert port["fixed_ips"] == [{"subnet_id": sub["id"], "ip_address": "10.60.0.10"}]
    shown = api.get(f"{N}/networks/{net['id']}").json()["network"]
    assert shown["subnets"] == [sub["id"]]
    changed = api.put(f"{N}/subnets/{sub['id']}", {"subnet": {
        "dns_nameservers": [], "name": "t", "allocation_pools": [
            {"start": "10.60.0.10", "end": "10.60.0.30"}]}})
    assert changed.status_code == 200, changed.content
    assert changed.json()["subnet"]["dns_nameservers"] == []
    assert changed.json()["subnet"]["allocation_pools"][0]["end"] == "10.60.0.30"
    error(api.put(f"{N}/subnets/{sub['id']}", {"subnet": {"cidr": "10.61.0.0/24"}}), 400)


def test_a_subnet_without_a_gateway(api_as, member):
    api = api_as(member)
    net = network(api)
    sub = subnet(api, net["id"], "10.70.0.0/29", gateway_ip=None)
    assert sub["gateway_ip"] is None
    assert sub["allocation_pools"] == [{"start": "10.70.0.1", "end": "10.70.0.6"}]


@pytest.mark.parametrize(("attrs", "status", "kind"), [
    ({"cidr": "10.1.2.3/24"}, 400, None),
    ({"cidr": "not-a-cidr"}, 400, None),
    ({"cidr": "fd00::/64", "ip_version": 6}, 400, None),
    ({"ip_version": 5}, 400, None),
    ({"gateway_ip": "10.80.1.1"}, 400, None),
    ({"gateway_ip": "bogus"}, 400, None),
    ({"allocation_pools": [{"start": "10.80.0.50", "end": "10.80.0.10"}]}, 400, None),
    ({"allocation_pools": [{"start": "10.80.0.0", "end": "10.80.0.10"}]}, 400,
     "OutOfBoundsAllocationPool"),
    ({"allocation_pools": [{"start": "10.80.0.2", "end": "10.80.0.9"},
                           {"start": "10.80.0.9", "end": "10.80.0.20"}]}, 409,
     "OverlappingAllocationPools"),
    ({"allocation_pools": [{"start": "10.80.0.1", "end": "10.80.0.9"}]}, 409,
     "GatewayConflictWithAllocationPools"),
    ({"allocation_pools": "all"}, 400, None),
    ({"dns_nameservers": ["1.1.1.1"] * 2}, 400, None),
    ({"dns_nameservers": ["x"]}, 400, None),
    ({"host_routes": [{"destination": "x", "nexthop": "10.80.0.5"}]}, 400, None),
    ({"host_routes": [{"destination": "10.0.0.0/8"}]}, 400, None),
    ({"enable_dhcp": "perhaps"}, 400, None),
    ({"network_id": "not-a-uuid"}, 400, None),
])
def test_bad_subnets(api_as, member, attrs, status, kind):
    api = api_as(member)
    net = network(api)
    body = {"network_id": net["id"], "cidr": "10.80.0.0/24", "ip_version": 4, **attrs}
    error(api.post(f"{N}/subnets", {"subnet": body}), status, kind)


def test_overlapping_subnets_of_one_network_are_refused(api_as, member):
    api = api_as(member)
    net = network(api)
    subnet(api, net["id"], "10.90.0.0/24")
    error(api.post(f"{N}/subnets", {"subnet": {"network_id": net["id"], "cidr": "10.90.0.0/16",
                                              "ip_version": 4}}), 400)


def test_a_subnet_with_addresses_in_use_cannot_be_deleted(api_as, member):
    api = api_as(member)
    net = network(api)
    sub = subnet(api, net["id"])
    port = made(api.post(f"{N}/ports", {"port": {"network_id": net["id"]}}), "port")
    error(api.delete(f"{N}/subnets/{sub['id']}"), 409, "SubnetInUse")
    api.delete(f"{N}/ports/{port['id']}")
    assert api.delete(f"{N}/subnets/{sub['id']}").status_code == 204


# --- ports


def test_port_create_with_fixed_ips_mac_and_groups(api_as, member):
    api = api_as(member)
    net = network(api)
    sub = subnet(api, net["id"], "10.55.0.0/24")
    port = made(api.post(f"{N}/ports", {"port": {
        "network_id": net["id"], "name": "p", "mac_address": "fa:16:3e:aa:bb:cc",
        "fixed_ips": [{"subnet_id": sub["id"], "ip_address": "10.55.0.77"}],
        "allowed_address_pairs": [{"ip_address": "10.55.0.200/30"}],
    }}), "port")
    assert port["mac_address"] == "fa:16:3e:aa:bb:cc"
    assert port["fixed_ips"] == [{"subnet_id": sub["id"], "ip_address": "10.55.0.77"}]
    default = api.get(f"{N}/security-groups?name=default").json()["security_groups"][0]
    assert port["security_groups"] == [default["id"]]
    assert port["allowed_address_pairs"] == [
        {"ip_address": "10.55.0.200/30", "mac_address": "fa:16:3e:aa:bb:cc"}]
    assert port["binding:host_id"] == "" and port["port_security_enabled"] is True
    error(api.post(f"{N}/ports", {"port": {"network_id": net["id"], "fixed_ips": [
        {"ip_address": "10.55.0.77"}]}}), 409, "IpAddressAlreadyAllocated")
    error(api.post(f"{N}/ports", {"port": {"network_id": net["id"],
                                           "mac_address": "fa:16:3e:aa:bb:cc"}}),
          409, "MacAddressInUse")
    listed = api.get(f"{N}/ports?fixed_ips=ip_address=10.55.0.77").json()["ports"]
    assert [p["id"] for p in listed] == [port["id"]]


def test_port_security_and_groups(api_as, member):
    api = api_as(member)
    net = network(api)
    subnet(api, net["id"])
    bare = made(api.post(f"{N}/ports", {"port": {"network_id": net["id"],
                                                 "port_security_enabled": False}}), "port")
    assert bare["security_groups"] == []
    default = api.get(f"{N}/security-groups?name=default").json()["security_groups"][0]["id"]
    error(api.post(f"{N}/ports", {"port": {"network_id": net["id"], "port_security_enabled": False,
                                           "security_groups": [default]}}),
          400, "PortSecurityAndIPRequiredForSecurityGroups")
    none = made(api.post(f"{N}/ports", {"port": {"network_id": net["id"],
                                                 "security_groups": []}}), "port")
    assert none["security_groups"] == []
    grouped = made(api.post(f"{N}/ports", {"port": {"network_id": net["id"]}}), "port")
    error(api.put(f"{N}/ports/{grouped['id']}", {"port": {"port_security_enabled": False}}),
          409, "PortSecurityPortHasSecurityGroup")
    off = api.put(f"{N}/ports/{grouped['id']}", {"port": {"port_security_enabled": False,
                                                         "security_groups": []}})
    assert off.status_code == 200, off.content
    assert off.json()["port"]["port_security_enabled"] is False
    error(api.post(f"{N}/ports", {"port": {"network_id": net["id"], "security_groups": [
        str(uuid.uuid4())]}}), 404, "SecurityGroupNotFound")


def test_port_update_changes_its_address_through_ipam(api_as, member):
    api = api_as(member)
    net = network(api)
    sub = subnet(api, net["id"], "10.56.0.0/24")
    port = made(api.post(f"{N}/ports", {"port": {"network_id": net["id"]}}), "port")
    moved = api.put(f"{N}/ports/{port['id']}", {"port": {"fixed_ips": [
        {"ip_address": "10.56.0.100"}], "name": "moved", "device_id": "d1"}})
    assert moved.status_code == 200, moved.content
    body = moved.json()["port"]
    assert body["fixed_ips"] == [{"subnet_id": sub["id"], "ip_address": "10.56.0.100"}]
    assert body["name"] == "moved" and body["device_id"] == "d1"
    # the old address is free again
    again = made(api.post(f"{N}/ports", {"port": {"network_id": net["id"]}}), "port")
    assert again["fixed_ips"][0]["ip_address"] == port["fixed_ips"][0]["ip_address"]
    error(api.put(f"{N}/ports/{port['id']}", {"port": {"network_id": net["id"]}}), 400)


def test_address_exhaustion_is_409(api_as, member):
    api = api_as(member)
    net = network(api)
    subnet(api, net["id"], "10.57.0.0/30")  # one host address besides the gateway
    made(api.post(f"{N}/ports", {"port": {"network_id": net["id"]}}), "port")
    error(api.post(f"{N}/ports", {"port": {"network_id": net["id"]}}), 409,
          "IpAddressGenerationFailure")


def test_a_port_on_a_network_without_subnets_has_no_address(api_as, member):
    api = api_as(member)
    net = network(api)
    port = made(api.post(f"{N}/ports", {"port": {"network_id": net["id"]}}), "port")
    assert port["fixed_ips"] == []


@pytest.mark.parametrize("attrs", [
    {"mac_address": "01:00:5e:00:00:01"},
    {"mac_address": "zz"},
    {"fixed_ips": [{"ip_address": "10.58.1.5"}]},
    {"fixed_ips": [{"subnet_id": "nope"}]},
    {"fixed_ips": [{}]},
    {"fixed_ips": "10.58.0.5"},
    {"allowed_address_pairs": [{"mac_address": "fa:16:3e:00:00:09"}]},
    {"allowed_address_pairs": [{"ip_address": "x"}]},
    {"binding:vnic_type": "direct"},
    {"security_groups": "default"},
    {"admin_state_up": []},
])
def test_bad_ports(api_as, member, attrs):
    api = api_as(member)
    net = network(api)
    subnet(api, net["id"], "10.58.0.0/24")
    error(api.post(f"{N}/ports", {"port": {"network_id": net["id"], **attrs}}), 400)


def test_ports_of_another_project_are_missing_and_shared_networks_take_ports(
        api_as, nets, member, other):
    mine = made(api_as(member).post(f"{N}/ports", {"port": {"network_id": str(nets["shared"].id)}}),
                "port")
    error(api_as(other).get(f"{N}/ports/{mine['id']}"), 404, "PortNotFound")
    error(api_as(other).put(f"{N}/ports/{mine['id']}", {"port": {"name": "x"}}), 404)
    error(api_as(other).delete(f"{N}/ports/{mine['id']}"), 404)
    # a project's private network takes no ports of another
    error(api_as(other).post(f"{N}/ports", {"port": {"network_id": str(nets["alpha"].id)}}), 404)


def test_port_quota(api_as, admin, member):
    api_as(admin).put(f"{N}/quotas/{member.project.id}", {"quota": {"port": 1}})
    api = api_as(member)
    net = network(api)
    made(api.post(f"{N}/ports", {"port": {"network_id": net["id"]}}), "port")
    error(api.post(f"{N}/ports", {"port": {"network_id": net["id"]}}), 409, "OverQuota")


def test_bulk_create_is_all_or_nothing(api_as, member):
    api = api_as(member)
    made = api.post(f"{N}/networks", {"networks": [{"name": "a"}, {"name": "b"}]})
    assert made.status_code == 201, made.content
    assert [n["name"] for n in made.json()["networks"]] == ["a", "b"]
    error(api.post(f"{N}/networks", {"networks": [{"name": "c"}, {"mtu": "x"}]}), 400)
    assert not Network.objects.filter(name="c").exists()
    error(api.post(f"{N}/networks", {"networks": []}), 400)


def test_port_list_filters_by_address_substring(api_as, member):
    api = api_as(member)
    net = network(api)
    subnet(api, net["id"], "10.59.0.0/24")
    port = made(api.post(f"{N}/ports", {"port": {"network_id": net["id"], "fixed_ips": [
        {"ip_address": "10.59.0.123"}]}}), "port")
    made(api.post(f"{N}/ports", {"port": {"network_id": net["id"]}}), "port")
    found = api.get(f"{N}/ports?fixed_ips=ip_address_substr=0.12").json()["ports"]
    assert [p["id"] for p in found] == [port["id"]]


def test_an_admin_makes_a_network_external_and_back(api_as, admin, member):
    net = network(api_as(admin))
    error(api_as(member).put(f"{N}/networks/{net['id']}", {"network": {"router:external": True}}),
          403)
    ext = api_as(admin).put(f"{N}/networks/{net['id']}", {"network": {"router:external": True}})
    assert ext.status_code == 200, ext.content
    body = ext.json()["network"]
    assert body["router:external"] is True and body["provider:network_type"] == "flat"
    assert body["provider:segmentation_id"] is None
    back = api_as(admin).put(f"{N}/networks/{net['id']}", {"network": {"router:external": False}})
    assert back.json()["network"]["provider:network_type"] == "vxlan"
    assert back.json()["network"]["provider:segmentation_id"] >= 1000


def test_an_external_network_goes_with_its_unmapped_floating_ips(api_as, admin):
    api = api_as(admin)
    ext = network(api, **{"router:external": True})
    subnet(api, ext["id"], "198.51.100.0/24")
    fip = api.post(f"{N}/floatingips", {"floatingip": {"floating_network_id": ext["id"]}})
    assert fip.status_code == 201, fip.content
    assert api.delete(f"{N}/networks/{ext['id']}").status_code == 204
    error(api.get(f"{N}/floatingips/{fip.json()['floatingip']['id']}"), 404)
