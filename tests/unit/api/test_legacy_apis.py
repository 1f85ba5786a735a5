"""The compute APIs that microversions removed or Nova retired, answered as Nova answers them:
os-hosts (until 2.42), the network proxies (until 2.35), os-volumes_boot (until 2.102), the
retired APIs (410 at every version), the usage audit log, volume attachments without a volume
service, quota classes, console auth tokens and the aggregate image cache (2.81)."""

from __future__ import annotations

import pytest

from cloud.api.compute import retired
from cloud.compute import quotas
from cloud.compute.models import Aggregate, ConsoleToken
from compute_agent import messages as msg
from tests.factories import give_address, make_node, make_server
from tests.unit.volumes.conftest import answer, created, report

pytestmark = pytest.mark.usefixtures("mv2104")
V = "/compute/v2.1"
MISSING = "11111111-1111-1111-1111-111111111111"


# --- retired: 410 Gone at every version


@pytest.mark.parametrize("route", ["/os-agents", "/os-cells", "/os-certificates",
                                   "/os-fping", "/os-floating-ips-bulk"])
@pytest.mark.parametrize("version", ["2.1", "2.104"])
def test_a_retired_api_is_gone_at_every_version(member, api_as, route, version):
    answer = api_as(member).get(f"{V}{route}", version=version)
    assert answer.status_code == 410
    assert answer.json()["computeFault"]["code"] == 410


def test_every_retired_route_answers_410_to_each_method(member, api_as):
    api = api_as(member)
    for route in retired.RETIRED_ROUTES:
        url = V + route.replace("<str:server_id>", MISSING).replace("<str:item>", "x") \
            .replace("<str:domain>", "d")
        assert api.get(url).status_code == 410, url
        assert api.delete(url).status_code == 410, url


# --- os-hosts: admins, until 2.42


@pytest.fixture
def node(db):
    return make_node("compute-1")


def test_os_hosts_lists_compute_hosts_until_2_42(admin, api_as, node):
    api = api_as(admin)
    listed = api.get(f"{V}/os-hosts", version="2.42").json()["hosts"]
    assert {"host_name": "compute-1", "service": "compute", "zone": "nova"} in listed
    assert api.get(f"{V}/os-hosts?zone=elsewhere", version="2.42").json()["hosts"] == []
    assert api.get(f"{V}/os-hosts", version="2.43").status_code == 404


def test_os_hosts_shows_what_a_host_holds_by_project(admin, member, api_as, node):
    make_server(member, host="compute-1")
    api = api_as(admin)
    shown = api.get(f"{V}/os-hosts/compute-1", version="2.42").json()["host"]
    rows = {r["resource"]["project"]: r["resource"] for r in shown}
    assert rows["(total)"]["memory_mb"] == node.memory_mb
    assert rows[str(member.project.id)]["cpu"] >= 1
    assert rows["(used_max)"]["cpu"] == rows[str(member.project.id)]["cpu"]
    assert api.get(f"{V}/os-hosts/nowhere", version="2.42").status_code == 404
    assert api.get(f"{V}/os-hosts/compute-1", version="2.43").status_code == 404


def test_os_hosts_power_and_maintenance_are_nova_s_501(admin, member, api_as, node):
    api = api_as(admin)
    update = api.put(f"{V}/os-hosts/compute-1", {"status": "disable"}, version="2.42")
    assert update.status_code == 501 and "notImplemented" in update.json()
    assert api.get(f"{V}/os-hosts/compute-1/reboot", version="2.42").status_code == 501
    assert api.put(f"{V}/os-hosts/compute-1", {"status": "off"}, version="2.42").status_code == 400
    assert api_as(member).get(f"{V}/os-hosts", version="2.42").status_code == 403


# --- the network proxies, until 2.35


def test_os_networks_lists_the_networks_a_project_sees_until_2_35(member, api_as, nets):
    api = api_as(member)
    labels = {n["label"] for n in api.get(f"{V}/os-networks", version="2.35").json()["networks"]}
    assert labels == {"public", "shared", "alpha-net"}
    shown = api.get(f"{V}/os-networks/{nets['alpha'].id}", version="2.35").json()["network"]
    assert shown["label"] == "alpha-net" and "vlan" not in shown
    assert api.get(f"{V}/os-networks/{nets['beta'].id}", version="2.35").status_code == 404
    assert api.get(f"{V}/os-networks", version="2.36").status_code == 404
    tenant = api.get(f"{V}/os-tenant-networks", version="2.35").json()["networks"]
    assert {n["label"] for n in tenant} == labels
    assert api.get(f"{V}/os-tenant-networks", version="2.36").status_code == 404


def test_floating_ip_proxies_until_2_35(member, api_as, nets):
    api = api_as(member)
    pools = api.get(f"{V}/os-floating-ip-pools", version="2.35").json()["floating_ip_pools"]
    assert pools == [{"name": "public"}]
    assert api.get(f"{V}/os-floating-ips", version="2.35").json() == {"floating_ips": []}
    assert api.get(f"{V}/os-floating-ips/1", version="2.35").status_code == 404
    assert api.get(f"{V}/os-floating-ip-pools", version="2.36").status_code == 404


def test_floating_ips_through_nova_s_proxies_until_2_35(member, reader, api_as, nets):
    """Allocated from a pool, mapped onto a server's port with addFloatingIp when a router joins
    the server's subnet to the pool, taken off with removeFloatingIp, released."""
    api = api_as(member)
    server = make_server(member)
    port = give_address(server, "alpha-net", "10.2.0.50")
    made = api.post(f"{V}/os-floating-ips", {"pool": "public"}, version="2.35")
    assert made.status_code == 200, made.content
    fip = made.json()["floating_ip"]
    assert fip["pool"] == "public" and fip["instance_id"] is None
    action = f"{V}/servers/{server.uuid}/action"
    add = {"addFloatingIp": {"address": fip["ip"]}}
    # no router joins alpha-net to public yet
    assert api.post(action, add, version="2.35").status_code == 400
    router = api.post("/network/v2.0/routers", {"router": {"external_gateway_info": {
        "network_id": str(nets["public"].id)}}}).json()["router"]
    api.put(f"/network/v2.0/routers/{router['id']}/add_router_interface",
            {"subnet_id": port.fixed_ips[0]["subnet_id"]})
    assert api.post(action, add, version="2.35").status_code == 202
    shown = api.get(f"{V}/os-floating-ips/{fip['id']}", version="2.35").json()["floating_ip"]
    assert (shown["fixed_ip"], shown["instance_id"]) == ("10.2.0.50", str(server.uuid))
    assert api.post(action, {"addFloatingIp": {"address": "198.51.100.1"}},
                    version="2.35").status_code == 404
    assert api.post(action, {"removeFloatingIp": {"address": fip["ip"]}},
                    version="2.35").status_code == 202
    assert api.post(action, {"removeFloatingIp": {"address": fip["ip"]}},
                    version="2.35").status_code == 409  # not associated (Nova's 409)
    by_id = api.post(f"{V}/os-floating-ips", {"pool": str(nets["public"].id)}, version="2.35")
    assert by_id.status_code == 200 and by_id.json()["floating_ip"]["pool"] == "public"
    assert api_as(reader).post(f"{V}/os-floating-ips", {}, version="2.35").status_code == 403
    assert api.post(f"{V}/os-floating-ips", {"pool": "nope"}, version="2.35").status_code == 404
    assert api.delete(f"{V}/os-floating-ips/{fip['id']}", version="2.35").status_code == 202
    left = api.get(f"{V}/os-floating-ips", version="2.35").json()["floating_ips"]
    assert [f["id"] for f in left] == [by_id.json()["floating_ip"]["id"]]


# --- os-volumes_boot, until 2.102


def test_os_volumes_boot_is_the_servers_api_until_2_103(member, api_as):
    server = make_server(member)
    api = api_as(member)
    listed = api.get(f"{V}/os-volumes_boot", version="2.102").json()["servers"]
    assert [s["id"] for s in listed] == [str(server.uuid)]
    assert api.get(f"{V}/os-volumes_boot/{server.uuid}",
                   version="2.102").json()["server"]["id"] == str(server.uuid)
    assert api.get(f"{V}/os-volumes_boot", version="2.103").status_code == 404
    assert api.get(f"{V}/os-volumes_boot/{server.uuid}", version="2.103").status_code == 404


# --- the usage audit log


def test_the_usage_audit_log_lists_every_compute_host_as_not_run(admin, member, api_as, node):
    api = api_as(admin)
    log = api.get(f"{V}/os-instance_usage_audit_log").json()["instance_usage_audit_logs"]
    assert (log["num_hosts"], log["num_hosts_not_run"], log["hosts_not_run"]) == (
        1, 1, ["compute-1"])
    before = api.get(f"{V}/os-instance_usage_audit_log/2026-03-15%2010:00:00").json()
    period = before["instance_usage_audit_log"]
    assert (period["period_beginning"], period["period_ending"]) == (
        "2026-02-01 00:00:00", "2026-03-01 00:00:00")
    assert api.get(f"{V}/os-instance_usage_audit_log/yesterday").status_code == 400
    assert api_as(member).get(f"{V}/os-instance_usage_audit_log").status_code == 403


# --- volume attachments without a volume service


def test_a_server_has_no_volume_attachments(member, api_as):
    server = make_server(member)
    api = api_as(member)
    url = f"{V}/servers/{server.uuid}/os-volume_attachments"
    assert api.get(url).json() == {"volumeAttachments": []}
    assert api.get(f"{url}/{MISSING}").status_code == 404
    assert api.delete(f"{url}/{MISSING}").status_code == 404


@pytest.mark.parametrize("field, value, version", [
    ("tag", "disk1", "2.49"),
    ("delete_on_termination", True, "2.79"),
])
def test_an_attach_field_is_accepted_from_its_microversion(member, api_as, field, value,
                                                            version):
    server = make_server(member)
    url = f"{V}/servers/{server.uuid}/os-volume_attachments"
    body = {"volumeAttachment": {"volumeId": MISSING, field: value}}
    below = f"2.{int(version.split('.')[1]) - 1}"
    assert api_as(member).post(url, body, version=below).status_code == 400
    # Accepted, then the volume is unknown: there is no volume service.
    missing = api_as(member).post(url, body, version=version)
    assert missing.status_code == 404
    assert MISSING in missing.json()["itemNotFound"]["message"]


def test_2_85_delete_on_termination_at_update(admin, member, api_as):
    server = make_server(member)
    url = f"{V}/servers/{server.uuid}/os-volume_attachments/{MISSING}"
    body = {"volumeAttachment": {"volumeId": MISSING, "delete_on_termination": False}}
    assert api_as(admin).put(url, body, version="2.84").status_code == 400
    assert api_as(admin).put(url, body, version="2.85").status_code == 404


# --- quota classes


def test_the_default_quota_class_sets_every_project_s_defaults(admin, member, api_as):
    api = api_as(admin)
    shown = api.get(f"{V}/os-quota-class-sets/default").json()["quota_class_set"]
    assert shown["id"] == "default" and "instances" in shown
    updated = api.put(f"{V}/os-quota-class-sets/default", {"quota_class_set": {"instances": 7}})
    assert updated.status_code == 200, updated.content
    assert updated.json()["quota_class_set"]["instances"] == 7
    assert quotas.limits_for(str(member.project.id))["instances"] == 7
    mine = api_as(member).get(f"{V}/os-quota-sets/{member.project.id}").json()["quota_set"]
    assert mine["instances"] == 7
    assert api_as(member).get(f"{V}/os-quota-class-sets/default").status_code == 403
    bad = api.put(f"{V}/os-quota-class-sets/default", {"quota_class_set": {"instances": -2}})
    assert bad.status_code == 400


def test_quota_class_fields_change_at_2_50_and_2_57(admin, api_as):
    api = api_as(admin)

    def shown(version):
        return api.get(f"{V}/os-quota-class-sets/default", version=version).json()[
            "quota_class_set"]

    assert "server_groups" in shown("2.50") and "floating_ips" not in shown("2.50")
    assert "server_groups" not in shown("2.49") and "floating_ips" in shown("2.49")
    assert "injected_files" in shown("2.56") and "injected_files" not in shown("2.57")
    body = {"quota_class_set": {"injected_files": 3}}
    assert api.put(f"{V}/os-quota-class-sets/default", body, version="2.57").status_code == 400
    assert api.put(f"{V}/os-quota-class-sets/default", body, version="2.56").status_code == 200


# --- console auth tokens (admins)


@pytest.fixture
def token(member):
    from datetime import timedelta

    from django.utils import timezone

    from cloud.compute.consoles import hash_token

    server = make_server(member, host="compute-1")
    ConsoleToken.objects.create(token_hash=hash_token("t0k3n"), instance=server,
                                host="compute-1", host_address="192.0.2.5", port=5901,
                                expires_at=timezone.now() + timedelta(minutes=5))
    return server


def test_a_console_token_shows_where_it_connects_from_2_31(admin, member, api_as, token):
    api = api_as(admin)
    shown = api.get(f"{V}/os-console-auth-tokens/t0k3n", version="2.31").json()["console"]
    assert shown == {"instance_uuid": str(token.uuid), "host": "compute-1", "port": 5901,
                     "internal_access_path": None}
    assert api.get(f"{V}/os-console-auth-tokens/t0k3n", version="2.30").status_code == 400
    assert api.get(f"{V}/os-console-auth-tokens/other", version="2.31").status_code == 404
    assert api_as(member).get(f"{V}/os-console-auth-tokens/t0k3n",
                              version="2.31").status_code == 403


def test_2_99_console_tokens_take_no_query_parameters(admin, api_as, token):
    api = api_as(admin)
    assert api.get(f"{V}/os-console-auth-tokens/t0k3n?x=1", version="2.98").status_code == 200
    assert api.get(f"{V}/os-console-auth-tokens/t0k3n?x=1", version="2.99").status_code == 400


@pytest.mark.parametrize("protocol, kind, version", [
    ("mks", "webmks", "2.8"),
    ("spice", "spice-direct", "2.99"),
])
def test_a_console_type_is_known_from_its_microversion(member, api_as, protocol, kind, version):
    """Known from its version (then refused as a type this cloud does not serve), unknown below."""
    server = make_server(member)
    body = {"remote_console": {"protocol": protocol, "type": kind}}
    url = f"{V}/servers/{server.uuid}/remote-consoles"
    below = f"2.{int(version.split('.')[1]) - 1}"
    unknown = api_as(member).post(url, body, version=below)
    assert unknown.status_code == 400 and "is not one of" in unknown.json()["badRequest"]["message"]
    known = api_as(member).post(url, body, version=version)
    assert known.status_code in (400, 501)
    assert "is not one of" not in str(known.json())


# --- the aggregate image cache (2.81)


def test_2_81_caching_images_on_an_aggregate_is_nova_s_501(admin, api_as, image):
    aggregate = Aggregate.objects.create(name="agg")
    api = api_as(admin)
    url = f"{V}/os-aggregates/{aggregate.id}/images"
    body = {"cache": [{"id": str(image.id)}]}
    assert api.post(url, body, version="2.80").status_code == 404
    refused = api.post(url, body, version="2.81")
    assert refused.status_code == 501 and "notImplemented" in refused.json()
    assert api.post(url, {"cache": [{"id": MISSING}]}, version="2.81").status_code == 400
    assert api.post(f"{V}/os-aggregates/999/images", body, version="2.81").status_code == 404


def test_os_security_groups_shows_the_project_s_default_group_until_2_35(member, api_as):
    api = api_as(member)
    groups = api.get(f"{V}/os-security-groups", version="2.35").json()["security_groups"]
    assert [(g["name"], g["tenant_id"]) for g in groups] == [("default", str(member.project.id))]
    shown = api.get(f"{V}/os-security-groups/{groups[0]['id']}", version="2.35")
    assert shown.json()["security_group"]["id"] == groups[0]["id"]
    assert api.get(f"{V}/os-security-groups/{MISSING}", version="2.35").status_code == 404
    assert api.get(f"{V}/os-security-groups", version="2.36").status_code == 404
    assert api.post(f"{V}/os-security-group-rules", {}, version="2.36").status_code == 404


def test_volume_and_snapshot_proxies_until_2_35_are_the_block_storage_volumes(member, reader,
                                                                            api_as):
    report()
    api = api_as(member)
    made = api.post(f"{V}/os-volumes", {"volume": {
        "size": "1", "display_name": "data", "metadata": {"Type": "work"}}}, version="2.35")
    assert made.status_code == 200
    volume = made.json()["volume"]
    assert (volume["displayName"], volume["size"], volume["status"], volume["metadata"],
            volume["volumeType"], volume["attachments"]) == (
        "data", 1, "creating", {"Type": "work"}, "__DEFAULT__", [{}])
    created(volume["id"])
    shown = api_as(reader).get(f"{V}/os-volumes/{volume['id']}", version="2.35").json()["volume"]
    assert shown["status"] == "available"
    # The list, the detail list and show give the same body (Tempest compares them whole).
    assert api.get(f"{V}/os-volumes", version="2.35").json() == {"volumes": [shown]}
    assert api.get(f"{V}/os-volumes/detail?limit=1&offset=1",
                   version="2.35").json() == {"volumes": []}
    # The v3 API sees the same volume.
    assert api.get(f"/volume/v3/{member.project.id}/volumes/{volume['id']}").json()[
        "volume"]["name"] == "data"
    for size in ("#$%", "", "0"):
        assert api.post(f"{V}/os-volumes", {"volume": {"size": size}},
                        version="2.35").status_code == 400
    assert api_as(reader).post(f"{V}/os-volumes", {"volume": {"size": 1}},
                               version="2.35").status_code == 403

    snap = api.post(f"{V}/os-snapshots", {"snapshot": {
        "volume_id": volume["id"], "display_name": "s1"}}, version="2.35").json()["snapshot"]
    assert (snap["volumeId"], snap["displayName"], snap["size"]) == (volume["id"], "s1", 1)
    answer(volume["id"], msg.EVENT_VOLUME_SNAPSHOT_CREATED, snapshot_id=snap["id"])
    listed = api.get(f"{V}/os-snapshots/detail", version="2.35").json()["snapshots"]
    assert [(s["id"], s["status"]) for s in listed] == [(snap["id"], "available")]
    assert api.delete(f"{V}/os-snapshots/{snap['id']}", version="2.35").status_code == 202
    answer(volume["id"], msg.EVENT_VOLUME_SNAPSHOT_DELETED, snapshot_id=snap["id"])
    assert api.get(f"{V}/os-snapshots/{snap['id']}", version="2.35").status_code == 404

    assert api.delete(f"{V}/os-volumes/{volume['id']}", version="2.35").status_code == 202
    answer(volume["id"], msg.EVENT_VOLUME_DELETED)
    for missing in (volume["id"], "invalid-name"):
        assert api.get(f"{V}/os-volumes/{missing}", version="2.35").status_code == 404
        assert api.delete(f"{V}/os-volumes/{missing}", version="2.35").status_code == 404
    assert api.get(f"{V}/os-volumes", version="2.36").status_code == 404
    assert api.get(f"{V}/os-volumes?limit=-1", version="2.35").status_code == 400


def test_bare_metal_proxy_until_2_35_has_no_nodes(admin, member, api_as):
    api = api_as(member)
    nodes = api_as(admin).get(f"{V}/os-baremetal-nodes", version="2.35")
    assert nodes.json() == {"nodes": []}
    assert api_as(admin).get(f"{V}/os-baremetal-nodes/n1", version="2.35").status_code == 404
    assert api_as(admin).get(f"{V}/os-baremetal-nodes", version="2.36").status_code == 404
    assert api.get(f"{V}/os-baremetal-nodes", version="2.35").status_code == 403


# --- the image-metadata proxy, until 2.38


def test_image_metadata_is_read_and_changed_until_2_38(member, reader, api_as, image):
    api = api_as(member)
    url = f"{V}/images/{image.id}/metadata"
    assert api.get(url, version="2.38").json() == {"metadata": {}}
    added = api.post(url, {"metadata": {"os_distro": "cirros", "k": "1"}}, version="2.38")
    assert added.json() == {"metadata": {"os_distro": "cirros", "k": "1"}}
    assert api.get(f"{url}/k", version="2.38").json() == {"meta": {"k": "1"}}
    assert api.put(f"{url}/k", {"meta": {"k": "2"}}, version="2.38").json() == {"meta": {"k": "2"}}
    assert api.put(f"{url}/k", {"meta": {"j": "2"}}, version="2.38").status_code == 400
    replaced = api.put(url, {"metadata": {"k": "3"}}, version="2.38")
    assert replaced.json() == {"metadata": {"k": "3"}}
    assert api.delete(f"{url}/k", version="2.38").status_code == 204
    assert api.get(f"{url}/k", version="2.38").status_code == 404
    assert api.post(url, {"metadata": {"name": "x"}}, version="2.38").status_code == 400
    assert api_as(reader).post(url, {"metadata": {"a": "b"}}, version="2.38").status_code == 403
    assert api.get(url, version="2.39").status_code == 404


def test_os_security_groups_and_rules_are_written_through_the_network_until_2_35(
        member, reader, api_as):
    api = api_as(member)
    made = api.post(f"{V}/os-security-groups", {"security_group": {
        "name": "web", "description": "http"}}, version="2.35")
    assert made.status_code == 200, made.content
    group = made.json()["security_group"]
    assert (group["name"], group["description"], group["rules"]) == ("web", "http", [])
    rule = api.post(f"{V}/os-security-group-rules", {"security_group_rule": {
        "parent_group_id": group["id"], "ip_protocol": "tcp", "from_port": 80, "to_port": 80,
        "cidr": "192.0.2.0/24"}}, version="2.35")
    assert rule.status_code == 200, rule.content
    body = rule.json()["security_group_rule"]
    assert (body["from_port"], body["to_port"], body["ip_range"]) == (80, 80,
                                                                     {"cidr": "192.0.2.0/24"})
    # the network API sees the same group and rule
    neutron = api.get(f"/network/v2.0/security-groups/{group['id']}").json()["security_group"]
    assert body["id"] in {r["id"] for r in neutron["security_group_rules"]}
    again = api.post(f"{V}/os-security-group-rules", {"security_group_rule": {
        "parent_group_id": group["id"], "ip_protocol": "tcp", "from_port": 80, "to_port": 80,
        "cidr": "192.0.2.0/24"}}, version="2.35")
    assert again.status_code == 400  # Neutron's 409, as Nova's proxy answers it
    for bad in ({"parent_group_id": "nope", "ip_protocol": "tcp", "from_port": 1, "to_port": 2},
                {"parent_group_id": group["id"], "ip_protocol": "xyz", "from_port": 1,
                 "to_port": 2},
                {"parent_group_id": group["id"], "ip_protocol": "tcp", "from_port": 22,
                 "to_port": 21},
                {"parent_group_id": group["id"], "ip_protocol": "tcp", "from_port": 70000,
                 "to_port": 22}):
        refused = api.post(f"{V}/os-security-group-rules", {"security_group_rule": bad},
                           version="2.35")
        assert refused.status_code == 400, (bad, refused.content)
    missing = api.post(f"{V}/os-security-group-rules", {"security_group_rule": {
        "parent_group_id": MISSING, "ip_protocol": "tcp", "from_port": 1, "to_port": 2}},
        version="2.35")
    assert missing.status_code == 404
    renamed = api.put(f"{V}/os-security-groups/{group['id']}", {"security_group": {
        "name": "www", "description": "d"}}, version="2.35")
    assert renamed.status_code == 200 and renamed.json()["security_group"]["name"] == "www"
    assert api.delete(f"{V}/os-security-group-rules/{body['id']}",
                      version="2.35").status_code == 202
    default = next(g for g in api.get(f"{V}/os-security-groups", version="2.35").json()[
        "security_groups"] if g["name"] == "default")
    assert api.delete(f"{V}/os-security-groups/{default['id']}", version="2.35").status_code == 400
    assert api_as(reader).post(f"{V}/os-security-groups", {"security_group": {"name": "x"}},
                               version="2.35").status_code == 403
    assert api.delete(f"{V}/os-security-groups/{group['id']}", version="2.35").status_code == 202
    assert api.get(f"{V}/os-security-groups/{group['id']}", version="2.35").status_code == 404
