"""A server's sub-resources: its ports (os-interface), security groups (os-security-groups and
the add/remove actions), topology (2.78), password and shares (2.97). Diagnostics:
test_server_diagnostics.py."""

from __future__ import annotations

import pytest

from cloud.compute.models import Instance
from tests.factories import give_address, make_server

pytestmark = pytest.mark.usefixtures("mv2104")
V = "/compute/v2.1"


@pytest.fixture
def server(member):
    server = make_server(member)
    server.port = give_address(server)
    return server


def test_os_interface_lists_and_shows_the_server_s_ports(member, api_as, server):
    api = api_as(member)
    port = server.port
    listed = api.get(f"{V}/servers/{server.uuid}/os-interface").json()["interfaceAttachments"]
    assert listed == [{"net_id": str(port.network_id), "port_id": str(port.id),
                       "mac_addr": port.mac_address, "port_state": port.status,
                       "fixed_ips": [{"subnet_id": port.fixed_ips[0]["subnet_id"],
                                     "ip_address": "10.0.0.10"}]}]
    shown = api.get(f"{V}/servers/{server.uuid}/os-interface/{port.id}", version="2.70").json()
    assert shown["interfaceAttachment"]["tag"] is None
    other = make_server(member, "vm2")
    assert api.get(f"{V}/servers/{other.uuid}/os-interface/{port.id}").status_code == 404


def test_security_groups_are_listed_added_and_removed(member, reader, api_as, server):
    api = api_as(member)
    url = f"{V}/servers/{server.uuid}/os-security-groups"
    (group,) = api.get(url).json()["security_groups"]
    assert (group["name"], group["tenant_id"]) == ("default", member.project.pk)
    assert {r["parent_group_id"] for r in group["rules"]} == {group["id"]}
    action = f"{V}/servers/{server.uuid}/action"
    assert api.post(action, {"removeSecurityGroup": {"name": "default"}}).status_code == 202
    assert api.get(url).json()["security_groups"] == []
    assert "security_groups" not in api.get(f"{V}/servers/{server.uuid}").json()["server"]
    assert api.post(action, {"removeSecurityGroup": {"name": "default"}}).status_code == 404
    assert api.post(action, {"addSecurityGroup": {"name": "default"}}).status_code == 202
    assert Instance.objects.get(pk=server.pk).security_groups == ["default"]
    assert api.post(action, {"addSecurityGroup": {"name": "web"}}).status_code == 404
    assert api_as(reader).post(action, {"addSecurityGroup": {"name": "default"}}).status_code \
        == 403


def test_a_server_is_created_with_the_groups_it_names(member, api_as, tiny, image):
    from tests.factories import boot

    api = api_as(member)
    assert boot(api, image, security_groups=[{"name": "web"}]).status_code == 400
    made = boot(api, image, security_groups=[{"name": "default"}])
    assert made.json()["server"]["security_groups"] == [{"name": "default"}]


def test_topology_is_empty_from_2_78(member, api_as, server):
    api = api_as(member)
    assert api.get(f"{V}/servers/{server.uuid}/topology", version="2.77").status_code == 404
    assert api.get(f"{V}/servers/{server.uuid}/topology", version="2.78").json() == {
        "nodes": [], "pagesize_kb": None}


def test_the_password_is_empty_and_clearing_it_is_204(member, reader, api_as, server):
    url = f"{V}/servers/{server.uuid}/os-server-password"
    assert api_as(reader).get(url).json() == {"password": ""}
    assert api_as(member).delete(url).status_code == 204
    assert api_as(reader).delete(url).status_code == 403


def test_shares_from_2_97_none_attached_and_attaching_refused(member, reader, other, api_as,
                                                              server):
    api = api_as(member)
    url = f"{V}/servers/{server.uuid}/shares"
    assert api.get(url, version="2.96").status_code == 404
    assert api.get(url, version="2.97").json() == {"shares": []}
    assert api_as(reader).get(url, version="2.97").status_code == 200
    assert api_as(other).get(url, version="2.97").status_code == 404
    share = {"share": {"share_id": "11111111-1111-1111-1111-111111111111"}}
    refused = api.post(url, share, version="2.97")
    assert refused.status_code == 400
    assert "no shared file system service" in refused.json()["badRequest"]["message"]
    assert api_as(reader).post(url, share, version="2.97").status_code == 403
    item = f"{url}/11111111-1111-1111-1111-111111111111"
    assert api.get(item, version="2.97").status_code == 404
    assert api.delete(item, version="2.97").status_code == 404
    assert api_as(reader).delete(item, version="2.97").status_code == 403


def test_a_floating_ip_shows_in_the_server_addresses_after_its_fixed_one(member, api_as, server):
    from cloud.network.models import FloatingIp, Network, Port

    public = Network.objects.create(name="public", external=True, network_type="flat")
    holder = Port.objects.create(network=public, device_owner="network:floatingip",
                                 mac_address="fa:16:3e:ff:00:01",
                                 fixed_ips=[{"ip_address": "172.24.4.30"}])
    FloatingIp.objects.create(floating_network=public, floating_port=holder,
                              floating_ip_address="172.24.4.30", port=server.port,
                              fixed_ip_address="10.0.0.10", project=member.project)
    shown = api_as(member).get(f"{V}/servers/{server.uuid}").json()["server"]["addresses"]
    assert [(a["addr"], a["OS-EXT-IPS:type"]) for a in shown["private"]] == \
        [("10.0.0.10", "fixed"), ("172.24.4.30", "floating")]
    ips = api_as(member).get(f"{V}/servers/{server.uuid}/ips").json()["addresses"]
    assert [a["addr"] for a in ips["private"]] == ["10.0.0.10", "172.24.4.30"]
