"""Security groups and rules (cloud/network/security_groups.py) over Neutron's API: the default
group made on first need with its stable id and four rules, CRUD with Neutron's 409s, rule
validation, tenancy, quotas, and the functions the compute side calls."""

from __future__ import annotations

import uuid

import pytest

from cloud import errors
from cloud.network import networks
from cloud.network import security_groups as groups
from cloud.network.models import SecurityGroup

N = "/network/v2.0"


def error(response, status: int, kind: str | None = None) -> dict:
    assert response.status_code == status, response.content
    body = response.json()["NeutronError"]
    if kind:
        assert body["type"] == kind, body
    return body


def create(api, name: str = "web", **attrs) -> dict:
    response = api.post(f"{N}/security-groups", {"security_group": {"name": name, **attrs}})
    assert response.status_code == 201, response.content
    return response.json()["security_group"]


def rule(api, group_id: str, **attrs):
    return api.post(f"{N}/security-group-rules", {"security_group_rule": {
        "security_group_id": group_id, "direction": "ingress", **attrs}})


def test_the_default_group_is_made_on_first_list_with_neutrons_rules(api_as, member):
    assert not SecurityGroup.objects.exists()
    listed = api_as(member).get(f"{N}/security-groups").json()["security_groups"]
    (default,) = listed
    assert default["name"] == "default"
    assert default["id"] == str(uuid.uuid5(groups._SG_NAMESPACE, member.project.id))
    rules = {(r["direction"], r["ethertype"], r["remote_group_id"])
             for r in default["security_group_rules"]}
    assert rules == {("egress", "IPv4", None), ("egress", "IPv6", None),
                     ("ingress", "IPv4", default["id"]), ("ingress", "IPv6", default["id"])}
    # the same group, not a second one
    assert api_as(member).get(f"{N}/security-groups/{default['id']}").status_code == 200
    assert SecurityGroup.objects.count() == 1
    assert networks.default_security_group(member.project.id)["id"] == default["id"]


def test_compute_side_functions(member):
    project = member.project.id
    default = groups.default_group(project)
    assert groups.default_group(project).pk == default.pk
    web = SecurityGroup.objects.create(project_id=project, name="web")
    assert groups.find_groups(project, ["web", str(default.id), "web"]) == [web, default]
    with pytest.raises(errors.BadRequest, match="nothere"):
        groups.find_groups(project, ["nothere"])
    body = groups.group_body(default)
    assert body["name"] == "default" and len(body["security_group_rules"]) == 4


def test_create_update_delete_a_group(api_as, member):
    api = api_as(member)
    web = create(api, description="http")
    assert [(r["direction"], r["ethertype"]) for r in web["security_group_rules"]] == [
        ("egress", "IPv4"), ("egress", "IPv6")]
    changed = api.put(f"{N}/security-groups/{web['id']}", {"security_group": {"name": "www"}})
    assert changed.status_code == 200 and changed.json()["security_group"]["name"] == "www"
    assert api.delete(f"{N}/security-groups/{web['id']}").status_code == 204
    error(api.get(f"{N}/security-groups/{web['id']}"), 404, "SecurityGroupNotFound")


def test_default_group_rules(api_as, admin, member):
    api = api_as(member)
    default = groups.default_group(member.project.id)
    error(api.post(f"{N}/security-groups", {"security_group": {"name": "default"}}), 409,
          "SecurityGroupDefaultAlreadyExists")
    error(api.put(f"{N}/security-groups/{default.id}", {"security_group": {"name": "x"}}), 409,
          "SecurityGroupCannotUpdateDefault")
    error(api.delete(f"{N}/security-groups/{default.id}"), 409,
          "SecurityGroupCannotRemoveDefault")
    assert api_as(admin).delete(f"{N}/security-groups/{default.id}").status_code == 204
    # back on next need, with the same id
    again = api.get(f"{N}/security-groups?name=default").json()["security_groups"]
    assert [g["id"] for g in again] == [str(default.id)]


def test_a_group_in_use_cannot_be_deleted(api_as, nets, member):
    api = api_as(member)
    web = create(api)
    port = api.post(f"{N}/ports", {"port": {"network_id": str(nets["alpha"].id),
                                            "security_groups": [web["id"]]}})
    assert port.status_code == 201, port.content
    error(api.delete(f"{N}/security-groups/{web['id']}"), 409, "SecurityGroupInUse")
    api.delete(f"{N}/ports/{port.json()['port']['id']}")
    assert api.delete(f"{N}/security-groups/{web['id']}").status_code == 204


def test_rules_create_show_list_delete(api_as, member):
    api = api_as(member)
    web = create(api)
    made = rule(api, web["id"], protocol="tcp", port_range_min=80, port_range_max=443,
                remote_ip_prefix="192.0.2.0/24")
    assert made.status_code == 201, made.content
    body = made.json()["security_group_rule"]
    assert (body["protocol"], body["port_range_min"], body["port_range_max"]) == ("tcp", 80, 443)
    assert body["remote_ip_prefix"] == "192.0.2.0/24" and body["ethertype"] == "IPv4"
    error(rule(api, web["id"], protocol="tcp", port_range_min=80, port_range_max=443,
               remote_ip_prefix="192.0.2.0/24"), 409, "SecurityGroupRuleExists")
    shown = api.get(f"{N}/security-group-rules/{body['id']}")
    assert shown.status_code == 200
    listed = api.get(f"{N}/security-group-rules?security_group_id={web['id']}&direction=ingress")
    assert [r["id"] for r in listed.json()["security_group_rules"]] == [body["id"]]
    group = api.get(f"{N}/security-groups/{web['id']}").json()["security_group"]
    assert body["id"] in {r["id"] for r in group["security_group_rules"]}
    assert api.delete(f"{N}/security-group-rules/{body['id']}").status_code == 204
    error(api.get(f"{N}/security-group-rules/{body['id']}"), 404, "SecurityGroupRuleNotFound")


def test_rule_from_a_remote_group_and_protocol_numbers(api_as, member):
    api = api_as(member)
    web = create(api)
    db_group = create(api, "db")
    made = rule(api, db_group["id"], protocol="6", port_range_min=5432, port_range_max=5432,
                remote_group_id=web["id"])
    assert made.status_code == 201, made.content
    assert made.json()["security_group_rule"]["remote_group_id"] == web["id"]
    icmp = rule(api, db_group["id"], protocol="icmp", port_range_min=8, port_range_max=0)
    assert icmp.status_code == 201, icmp.content
    anything = rule(api, db_group["id"], protocol="any", ethertype="IPv6")
    assert anything.status_code == 201 and anything.json()["security_group_rule"]["protocol"] is None
    # deleting the remote group takes the rules that name it
    assert api.delete(f"{N}/security-groups/{web['id']}").status_code == 204
    left = api.get(f"{N}/security-groups/{db_group['id']}").json()["security_group"]
    assert all(r["remote_group_id"] is None for r in left["security_group_rules"])


@pytest.mark.parametrize(("attrs", "status"), [
    ({"direction": "sideways"}, 400),
    ({"ethertype": "IPv5"}, 400),
    ({"protocol": "carrier-pigeon"}, 400),
    ({"protocol": 256}, 400),
    ({"protocol": "tcp", "port_range_min": 0, "port_range_max": 10}, 400),
    ({"protocol": "tcp", "port_range_min": 90, "port_range_max": 80}, 400),
    ({"protocol": "udp", "port_range_min": 1, "port_range_max": 70000}, 400),
    ({"protocol": "icmp", "port_range_min": 300}, 400),
    ({"protocol": "icmp", "port_range_max": 0}, 400),
    ({"protocol": "gre", "port_range_min": 1, "port_range_max": 2}, 400),
    ({"port_range_min": 22, "port_range_max": 22}, 400),
    ({"remote_ip_prefix": "2001:db8::/32"}, 400),
    ({"remote_ip_prefix": "banana"}, 400),
    ({"remote_ip_prefix": "10.0.0.0/8", "remote_group_id": "{group}"}, 400),
    ({"remote_group_id": "{missing}"}, 404),
    ({"protocol": "icmpv6"}, 400),
    ({"port_range_min": "x", "protocol": "tcp"}, 400),
    ({"bogus": 1}, 400),
])
def test_bad_rules(api_as, member, attrs, status):
    api = api_as(member)
    web = create(api)
    filled = {k: (v.replace("{group}", web["id"]).replace("{missing}", str(uuid.uuid4()))
                  if isinstance(v, str) else v) for k, v in attrs.items()}
    error(rule(api, web["id"], **filled), status)


def test_groups_of_another_project_are_missing(api_as, member, other, reader):
    web = create(api_as(member))
    error(api_as(other).get(f"{N}/security-groups/{web['id']}"), 404)
    error(api_as(other).put(f"{N}/security-groups/{web['id']}", {"security_group": {
        "name": "x"}}), 404)
    error(api_as(other).delete(f"{N}/security-groups/{web['id']}"), 404)
    error(rule(api_as(other), web["id"]), 404)
    theirs = api_as(other).get(f"{N}/security-groups").json()["security_groups"]
    assert web["id"] not in {g["id"] for g in theirs}
    error(api_as(reader).post(f"{N}/security-groups", {"security_group": {"name": "x"}}), 403)
    error(rule(api_as(reader), web["id"]), 403)
    rule_id = web["security_group_rules"][0]["id"]
    error(api_as(other).get(f"{N}/security-group-rules/{rule_id}"), 404)
    error(api_as(other).delete(f"{N}/security-group-rules/{rule_id}"), 404)
    error(api_as(reader).delete(f"{N}/security-group-rules/{rule_id}"), 403)


def test_group_and_rule_quotas(api_as, admin, member):
    api_as(admin).put(f"{N}/quotas/{member.project.id}", {"quota": {
        "security_group": 2, "security_group_rule": 7}})
    api = api_as(member)
    web = create(api)  # the default group (4 rules) and this one (2 rules)
    error(api.post(f"{N}/security-groups", {"security_group": {"name": "x"}}), 409, "OverQuota")
    assert rule(api, web["id"], protocol="tcp", port_range_min=22,
                port_range_max=22).status_code == 201
    error(rule(api, web["id"], protocol="tcp", port_range_min=23, port_range_max=23), 409,
          "OverQuota")


@pytest.mark.parametrize(("protocol", "low", "high", "message"), [
    ("tcp", -16, 80, "Invalid value for port -16"),
    ("tcp", 80, 65536, "Invalid value for port 65536"),
    ("tcp", None, 6, "port_range_min must be <= port_range_max"),
    ("icmp", 1, 256, "Invalid value for ICMP code"),
    ("icmp", 300, 1, "Invalid value for ICMP type"),
    ("icmp", None, 6, "ICMP type (port-range-min) is missing"),
])
def test_port_range_messages_are_neutrons(api_as, member, protocol, low, high, message):
    api = api_as(member)
    web = create(api)
    body = error(rule(api, web["id"], protocol=protocol, port_range_min=low,
                      port_range_max=high), 400)
    assert message in body["message"]


def test_a_remote_group_id_that_is_no_uuid_is_missing(api_as, member):
    api = api_as(member)
    web = create(api)
    error(rule(api, web["id"], remote_group_id="bad_group_id"), 404, "SecurityGroupNotFound")


def test_a_remote_prefix_is_kept_as_given_and_shown_normalized(api_as, member):
    api = api_as(member)
    web = create(api)
    made = rule(api, web["id"], protocol="tcp", port_range_min=22, port_range_max=22,
                remote_ip_prefix="10.2.3.124/24")
    assert made.status_code == 201, made.content
    body = made.json()["security_group_rule"]
    assert body["remote_ip_prefix"] == "10.2.3.124/24"
    assert body["normalized_cidr"] == "10.2.3.0/24"
    host = rule(api, web["id"], protocol="udp", port_range_min=53, port_range_max=53,
                remote_ip_prefix="192.0.2.7")
    assert host.json()["security_group_rule"]["remote_ip_prefix"] == "192.0.2.7/32"
