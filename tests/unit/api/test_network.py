"""Neutron v2.0 read-only subset (IPAM itself: tests/unit/network/test_ipam.py)."""

from __future__ import annotations

import uuid

import pytest

from cloud.network import ipam

NET_KEYS = {
    "id", "name", "status", "admin_state_up", "shared", "subnets", "tenant_id", "project_id",
    "router:external", "mtu", "port_security_enabled", "availability_zones", "description",
    "tags",
}  # fmt: skip
PORT_KEYS = {
    "id", "name", "network_id", "device_id", "device_owner", "mac_address", "fixed_ips",
    "status", "admin_state_up", "project_id", "tenant_id",
}  # fmt: skip
SUBNET_KEYS = {
    "id", "name", "network_id", "cidr", "ip_version", "gateway_ip", "enable_dhcp",
    "allocation_pools", "tenant_id", "project_id",
}  # fmt: skip


def names(response, key: str) -> set[str]:
    assert response.status_code == 200, response.content
    return {item["name"] for item in response.json()[key]}


def test_discovery_needs_no_token(api_as, db):
    anonymous = api_as(None)
    root = anonymous.get("/network")
    assert root.status_code == 200
    (version,) = root.json()["versions"]
    assert version["id"] == "v2.0" and version["status"] == "CURRENT"
    assert version["links"][0]["href"].endswith("/network/v2.0/")
    resources = anonymous.get("/network/v2.0")
    assert resources.status_code == 200
    assert "networks" in {r["collection"] for r in resources.json()["resources"]}


def test_listing_needs_a_token(api_as, db):
    response = api_as(None).get("/network/v2.0/networks")
    assert response.status_code == 401
    assert "NeutronError" in response.json()


def test_network_tenancy(api_as, nets, admin, member, reader, other):
    assert names(api_as(member).get("/network/v2.0/networks"), "networks") == {
        "public", "shared", "alpha-net"
    }  # fmt: skip
    assert names(api_as(reader).get("/network/v2.0/networks"), "networks") == {
        "public", "shared", "alpha-net"
    }  # fmt: skip
    assert names(api_as(other).get("/network/v2.0/networks"), "networks") == {
        "public", "shared", "beta-net"
    }  # fmt: skip
    assert names(api_as(admin).get("/network/v2.0/networks"), "networks") == {
        "public", "shared", "alpha-net", "beta-net"
    }  # fmt: skip


def test_network_body(api_as, nets, member):
    network = nets["alpha"]
    response = api_as(member).get(f"/network/v2.0/networks/{network.id}")
    assert response.status_code == 200
    body = response.json()["network"]
    assert NET_KEYS <= set(body)
    assert body["id"] == str(network.id)
    assert body["tenant_id"] == body["project_id"] == member.project.id
    assert body["status"] == "ACTIVE"
    assert body["subnets"] == [str(network.subnets.get().id)]
    assert body["router:external"] is False and body["shared"] is False


@pytest.mark.parametrize("ident", ["beta", "missing", "not-a-uuid"])
def test_network_not_found(api_as, nets, member, ident):
    target = {"beta": str(nets["beta"].id), "missing": str(uuid.uuid4())}.get(ident, ident)
    response = api_as(member).get(f"/network/v2.0/networks/{target}")
    assert response.status_code == 404
    assert response.json() == {
        "NeutronError": {
            "type": "NetworkNotFound",
            "message": f"Network {target} could not be found.",
            "detail": "",
        }
    }


def test_network_filters(api_as, nets, admin):
    api = api_as(admin)
    assert names(api.get("/network/v2.0/networks?name=shared"), "networks") == {"shared"}
    assert names(api.get("/network/v2.0/networks?shared=True"), "networks") == {"shared"}
    assert names(api.get("/network/v2.0/networks?router:external=true"), "networks") == {"public"}
    two = f"id={nets['alpha'].id}&id={nets['beta'].id}"
    assert names(api.get(f"/network/v2.0/networks?{two}"), "networks") == {
        "alpha-net", "beta-net"
    }  # fmt: skip
    by_project = f"project_id={nets['beta'].project_id}"
    assert names(api.get(f"/network/v2.0/networks?{by_project}"), "networks") == {"beta-net"}
    by_tenant = f"tenant_id={nets['beta'].project_id}"
    assert names(api.get(f"/network/v2.0/networks?{by_tenant}"), "networks") == {"beta-net"}
    assert names(api.get("/network/v2.0/networks?id=nope"), "networks") == set()
    assert api.get("/network/v2.0/networks?shared=maybe").status_code == 400


def test_fields_parameter(api_as, nets, member):
    body = api_as(member).get("/network/v2.0/networks?name=shared&fields=id&fields=name").json()
    assert body["networks"] == [{"id": str(nets["shared"].id), "name": "shared"}]


def test_subnets(api_as, nets, member, other):
    api = api_as(member)
    assert names(api.get("/network/v2.0/subnets"), "subnets") == {
        "public-subnet", "shared-subnet", "alpha-net-subnet"
    }  # fmt: skip
    subnet = nets["alpha"].subnets.get()
    body = api.get(f"/network/v2.0/subnets/{subnet.id}").json()["subnet"]
    assert SUBNET_KEYS <= set(body)
    assert body["allocation_pools"] == [{"start": "10.2.0.2", "end": "10.2.0.254"}]
    assert body["network_id"] == str(nets["alpha"].id)
    by_net = api.get(f"/network/v2.0/subnets?network_id={nets['shared'].id}")
    assert names(by_net, "subnets") == {"shared-subnet"}
    foreign = api.get(f"/network/v2.0/subnets/{nets['beta'].subnets.get().id}")
    assert foreign.status_code == 404
    assert foreign.json()["NeutronError"]["type"] == "SubnetNotFound"


def test_ports_are_only_the_projects_own(api_as, nets, admin, member, other):
    mine = ipam.allocate_port(nets["shared"], member.project.id, "vm-a", name="a")
    theirs = ipam.allocate_port(nets["shared"], other.project.id, "vm-b", name="b")
    assert names(api_as(member).get("/network/v2.0/ports"), "ports") == {"a"}
    assert names(api_as(other).get("/network/v2.0/ports"), "ports") == {"b"}
    assert names(api_as(admin).get("/network/v2.0/ports"), "ports") == {"a", "b"}
    body = api_as(member).get(f"/network/v2.0/ports/{mine.id}").json()["port"]
    assert PORT_KEYS <= set(body)
    assert body["fixed_ips"] == mine.fixed_ips
    assert body["device_owner"] == "compute:nova"
    foreign = api_as(member).get(f"/network/v2.0/ports/{theirs.id}")
    assert foreign.status_code == 404
    assert foreign.json()["NeutronError"]["type"] == "PortNotFound"
    by_device = api_as(admin).get("/network/v2.0/ports?device_id=vm-b")
    assert names(by_device, "ports") == {"b"}
    by_net = api_as(admin).get(f"/network/v2.0/ports?network_id={nets['alpha'].id}")
    assert names(by_net, "ports") == set()


def test_an_admin_resets_a_projects_network_quota_as_neutrons_delete(api_as, nets, admin, member):
    # Ansible's quota module with state=absent deletes the network quota after the compute one.
    path = f"/network/v2.0/quotas/{member.project.id}"
    before = api_as(member).get(path).json()
    assert api_as(member).delete(path).status_code == 403
    deleted = api_as(admin).delete(path)
    assert deleted.status_code == 204 and not deleted.content
    assert api_as(member).get(path).json() == before
    assert api_as(admin).delete(f"{path}/default").status_code == 405


def test_quota_floating_ips_security_groups(api_as, nets, member, other):
    api = api_as(member)
    quota = api.get(f"/network/v2.0/quotas/{member.project.id}")
    assert quota.status_code == 200
    assert quota.json()["quota"]["network"] == 100
    details = api.get(f"/network/v2.0/quotas/{member.project.id}/details").json()["quota"]
    assert details["network"] == {"limit": 100, "used": 1, "reserved": 0}
    assert api.get(f"/network/v2.0/quotas/{other.project.id}").status_code == 403
    assert api.get("/network/v2.0/floatingips").json() == {"floatingips": []}
    groups = api.get("/network/v2.0/security-groups").json()["security_groups"]
    assert [(g["name"], g["project_id"]) for g in groups] == [("default", member.project.id)]
    again = api.get(f"/network/v2.0/security-groups/{groups[0]['id']}").json()
    assert again["security_group"] == groups[0]
    theirs = api_as(other).get("/network/v2.0/security-groups").json()["security_groups"]
    assert theirs[0]["id"] != groups[0]["id"]
    missing = api.get(f"/network/v2.0/security-groups/{theirs[0]['id']}")
    assert missing.status_code == 404


def test_only_an_admin_deletes_a_default_security_group_and_it_is_back_at_once(
    api_as, nets, admin, member, other
):
    groups = api_as(member).get("/network/v2.0/security-groups").json()["security_groups"]
    path = f"/network/v2.0/security-groups/{groups[0]['id']}"
    refused = api_as(member).delete(path)
    assert refused.status_code == 409
    assert refused.json()["NeutronError"]["type"] == "SecurityGroupCannotRemoveDefault"
    assert api_as(other).delete(path).status_code == 404
    deleted = api_as(admin).delete(path)
    assert deleted.status_code == 204 and not deleted.content
    assert api_as(member).get(path).status_code == 200
