"""Each microversion's change, asked at that version and at the one just below it.

docs/microversions.md lists every version 2.1-2.104 and the test that covers it; most are here.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from cloud.compute import hypervisors
from cloud.compute.models import ComputeNode, Flavor, Instance, InstanceTag, ServerGroup
from cloud.images.models import Image
from tests.factories import boot, give_address, make_node, make_server

pytestmark = pytest.mark.usefixtures("mv2104")
V = "/compute/v2.1"


def _below(version: str) -> str:
    major, minor = version.split(".")
    return f"{major}.{int(minor) - 1}"


@pytest.fixture
def shown(member, admin, api_as):
    """The member's server (placed, with an address, a tag, a group and a locked reason) as
    `shown(version, persona="member", view="show")` answers it."""
    image = Image.objects.create(name="img", status="active", disk_format="qcow2",
                                 container_format="bare", owner=member.project,
                                 properties={"hw_disk_bus": "virtio", "owner_specified.x": "y"})
    server = make_server(member, "vm", image_ref=str(image.id), locked=True,
                         locked_reason="maintenance", hostname="vm-host",
                         availability_zone="nova", scheduler_hints={"group": "g"},
                         user_data="aGk=", key_name="k1")
    give_address(server)
    InstanceTag.objects.create(instance=server, tag="web")
    group = ServerGroup.objects.create(name="g", project=member.project, user=member.user,
                                       policy="affinity")
    group.members.create(instance=server)
    people = {"member": member, "admin": admin}

    def show(version: str, persona: str = "member") -> dict:
        response = api_as(people[persona]).get(f"{V}/servers/{server.uuid}", version=version)
        assert response.status_code == 200, response.content
        return response.json()["server"]

    show.server = server  # type: ignore[attr-defined]
    show.group = group  # type: ignore[attr-defined]
    return show


# (key of the server body, the version that added it, the persona who sees it)
ADDED_KEYS = [
    ("OS-EXT-SRV-ATTR:user_data", "2.3", "admin"),
    ("locked", "2.9", "member"),
    ("host_status", "2.16", "admin"),
    ("description", "2.19", "member"),
    ("tags", "2.26", "member"),
    ("trusted_image_certificates", "2.63", "member"),
    ("server_groups", "2.71", "member"),
    ("locked_reason", "2.73", "member"),
    ("OS-EXT-SRV-ATTR:hostname", "2.90", "member"),
    ("pinned_availability_zone", "2.96", "member"),
    ("scheduler_hints", "2.100", "member"),
]


@pytest.mark.parametrize("key, version, persona", ADDED_KEYS, ids=[k[1] for k in ADDED_KEYS])
def test_a_server_key_appears_at_its_microversion(shown, key, version, persona):
    assert key in shown(version, persona)
    assert key not in shown(_below(version), persona)


def test_values_of_the_newer_server_keys(shown):
    body = shown("2.100")
    assert body["tags"] == ["web"]
    assert body["trusted_image_certificates"] is None
    assert body["server_groups"] == [str(shown.group.uuid)]
    assert body["locked_reason"] == "maintenance"
    assert body["OS-EXT-SRV-ATTR:hostname"] == "vm-host"
    assert body["pinned_availability_zone"] == "nova"
    assert body["scheduler_hints"] == {"group": "g"}
    assert body["image"]["properties"] == {"hw_disk_bus": "virtio"}
    assert "properties" not in shown("2.97")["image"]


def test_2_47_embeds_the_flavor(shown):
    assert set(shown("2.47")["flavor"]) == {"vcpus", "ram", "disk", "ephemeral", "swap",
                                             "original_name", "extra_specs"}
    assert set(shown("2.46")["flavor"]) == {"id", "links"}


def test_2_71_server_groups_are_not_in_the_detail_list(shown, member, api_as):
    listed = api_as(member).get(f"{V}/servers/detail", version="2.71").json()["servers"][0]
    assert "server_groups" not in listed
    assert "locked_reason" in api_as(member).get(f"{V}/servers/detail",
                                                 version="2.73").json()["servers"][0]


def test_2_75_update_answers_the_whole_server(shown, member, api_as):
    server = shown.server
    api = api_as(member)
    Instance.objects.filter(pk=server.pk).update(locked=False)
    before = api.put(f"{V}/servers/{server.uuid}", {"server": {"name": "x"}}, version="2.74")
    assert before.status_code == 200, before.content
    assert "key_name" not in before.json()["server"]
    after = api.put(f"{V}/servers/{server.uuid}", {"server": {"name": "y"}}, version="2.75")
    assert after.json()["server"]["key_name"] == "k1"
    assert "OS-EXT-STS:vm_state" in after.json()["server"]


def test_2_90_hostname_is_settable_at_update(shown, member, api_as):
    server = shown.server
    Instance.objects.filter(pk=server.pk).update(locked=False)
    api = api_as(member)
    body = {"server": {"hostname": "new-name"}}
    assert api.put(f"{V}/servers/{server.uuid}", body, version="2.89").status_code == 400
    updated = api.put(f"{V}/servers/{server.uuid}", body, version="2.90")
    assert updated.json()["server"]["OS-EXT-SRV-ATTR:hostname"] == "new-name"
    fqdn = {"server": {"hostname": "web.example.org"}}
    assert api.put(f"{V}/servers/{server.uuid}", fqdn, version="2.93").status_code == 400
    assert api.put(f"{V}/servers/{server.uuid}", fqdn, version="2.94").status_code == 200


# --- requests that a microversion started to accept


@pytest.mark.parametrize("field, value, version", [
    ("description", "d", "2.19"),
    ("tags", ["t"], "2.52"),
    ("hostname", "my-vm", "2.90"),
])
def test_a_create_field_is_accepted_from_its_microversion(member, api_as, tiny, image, field,
                                                          value, version):
    api = api_as(member)
    # Before 2.37 networks is a list (and "none" is no network at all).
    networks = "none" if version >= "2.37" else []
    assert boot(api, image, version=_below(version), networks=networks,
                **{field: value}).status_code == 400
    made = boot(api, image, version=version, networks=networks, **{field: value})
    assert made.status_code == 202, made.content


def test_2_90_hostname_at_create_is_kept(member, api_as, tiny, image):
    api = api_as(member)
    made = boot(api, image, version="2.90", hostname="given").json()["server"]
    assert Instance.objects.get(pk=made["id"]).hostname == "given"
    assert boot(api, image, version="2.90", hostname="given", max_count=2,
                min_count=2).status_code == 400


def test_2_63_trusted_certificates_are_refused_with_nova_s_error(member, api_as, tiny, image):
    api = api_as(member)
    body = {"trusted_image_certificates": ["cert-1"]}
    assert boot(api, image, version="2.62", **body).status_code == 400
    refused = boot(api, image, version="2.63", **body)
    assert refused.status_code == 400
    assert "certificate validation" in refused.json()["badRequest"]["message"]
    assert not Instance.objects.exists()
    assert boot(api, image, version="2.63", trusted_image_certificates=None).status_code == 202


def test_2_74_host_at_create_is_for_admins_and_must_exist(admin, member, api_as, tiny, image):
    make_node("compute-7")
    assert boot(api_as(admin), image, version="2.73", host="compute-7").status_code == 400
    assert boot(api_as(member), image, version="2.74", host="compute-7").status_code == 403
    assert boot(api_as(admin), image, version="2.74", host="nowhere").status_code == 400
    made = boot(api_as(admin), image, version="2.74", host="compute-7",
                hypervisor_hostname="compute-7.local")
    assert made.status_code == 202, made.content
    instance = Instance.objects.get(pk=made.json()["server"]["id"])
    assert (instance.requested_host, instance.requested_node, instance.force_destination) == (
        "compute-7", "compute-7.local", False)


def test_zone_host_forces_the_host_for_admins_only(admin, member, api_as, tiny, image):
    make_node("compute-7")
    refused = boot(api_as(member), image, availability_zone="nova:compute-7")
    assert refused.status_code == 403
    made = boot(api_as(admin), image, availability_zone="nova:compute-7")
    assert made.status_code == 202, made.content
    instance = Instance.objects.get(pk=made.json()["server"]["id"])
    assert (instance.requested_host, instance.force_destination, instance.availability_zone) == (
        "compute-7", True, "nova")
    mixed = boot(api_as(admin), image, version="2.74", availability_zone="nova:compute-7",
                 host="compute-7")
    assert mixed.status_code == 202  # the forced form wins, as in Nova


def test_2_104_pinned_zone_can_be_unpinned_and_pinned_again(shown, member, api_as):
    server = shown.server
    Instance.objects.filter(pk=server.pk).update(locked=False)
    api = api_as(member)
    unpin = {"server": {"pinned_availability_zone": None}}
    assert api.put(f"{V}/servers/{server.uuid}", unpin, version="2.103").status_code == 400
    answered = api.put(f"{V}/servers/{server.uuid}", unpin, version="2.104")
    assert answered.json()["server"]["pinned_availability_zone"] is None
    elsewhere = {"server": {"pinned_availability_zone": "az9"}}
    assert api.put(f"{V}/servers/{server.uuid}", elsewhere, version="2.104").status_code == 409
    here = {"server": {"pinned_availability_zone": "nova"}}
    repinned = api.put(f"{V}/servers/{server.uuid}", here, version="2.104")
    assert repinned.json()["server"]["pinned_availability_zone"] == "nova"
    assert api.put(f"{V}/servers/{server.uuid}", elsewhere, version="2.104").status_code == 409


def test_2_73_a_lock_records_its_reason(member, api_as):
    server = make_server(member)
    api = api_as(member)
    body = {"lock": {"locked_reason": "backup running"}}
    assert api.post(f"{V}/servers/{server.uuid}/action", body, version="2.73").status_code == 202
    shown = api.get(f"{V}/servers/{server.uuid}", version="2.73").json()["server"]
    assert (shown["locked"], shown["locked_reason"]) == (True, "backup running")
    api.post(f"{V}/servers/{server.uuid}/action", {"unlock": None}, version="2.73")
    assert api.get(f"{V}/servers/{server.uuid}",
                   version="2.73").json()["server"]["locked_reason"] is None
    bad = {"lock": {"locked_reason": "x", "extra": 1}}
    assert api.post(f"{V}/servers/{server.uuid}/action", bad, version="2.73").status_code == 400


def test_2_54_and_2_57_rebuild_takes_a_key_and_user_data(member, api_as, tiny, image, sent):
    from tests.factories import host_up

    host_up("compute1")
    server = make_server(member, key_name=None, image_ref=str(image.id))
    from cloud.compute.models import KeyPair

    KeyPair.objects.create(user=member.user, name="k2", public_key="ssh-ed25519 AAAA",
                           fingerprint="f")
    api = api_as(member)
    body = {"rebuild": {"imageRef": str(image.id), "key_name": "k2", "user_data": "aGVsbG8="}}
    assert api.post(f"{V}/servers/{server.uuid}/action", body, version="2.53").status_code == 400
    rebuilt = api.post(f"{V}/servers/{server.uuid}/action", body, version="2.57")
    assert rebuilt.status_code == 202, rebuilt.content
    answer = rebuilt.json()["server"]
    assert (answer["key_name"], answer["user_data"]) == ("k2", "aGVsbG8=")
    server.refresh_from_db()
    assert (server.key_name, server.key_data) == ("k2", "ssh-ed25519 AAAA")


def test_2_68_live_migration_takes_no_force(admin, member, api_as):
    server = make_server(member)
    body = {"os-migrateLive": {"host": None, "block_migration": "auto", "force": False}}
    refused = api_as(admin).post(f"{V}/servers/{server.uuid}/action", body, version="2.68")
    assert refused.status_code == 400
    assert "force" in refused.json()["badRequest"]["message"]


def test_2_66_changes_before_on_instance_actions(member, api_as):
    server = make_server(member)
    api = api_as(member)
    api.post(f"{V}/servers/{server.uuid}/action", {"lock": None})
    url = f"{V}/servers/{server.uuid}/os-instance-actions?changes-before=2000-01-01T00:00:00Z"
    assert api.get(url, version="2.66").json()["instanceActions"] == []
    assert len(api.get(url, version="2.65").json()["instanceActions"]) == 1


def test_2_62_and_2_84_instance_action_events_carry_host_ids_and_details(admin, member, api_as):
    from cloud.compute import action_records

    server = make_server(member)
    api_as(member).post(f"{V}/servers/{server.uuid}/action", {"lock": None})
    action_records.record_event(str(server.uuid), "compute_lock", "Error", host="compute1",
                                details="it failed")
    request_id = server.actions.get().request_id
    url = f"{V}/servers/{server.uuid}/os-instance-actions/{request_id}"

    def event(persona, version):
        return api_as(persona).get(url, version=version).json()["instanceAction"]["events"][0]

    assert "hostId" not in event(member, "2.61") and "host" not in event(admin, "2.61")
    assert event(member, "2.62")["hostId"] and "host" not in event(member, "2.62")
    assert event(admin, "2.62")["host"] == "compute1"
    assert "traceback" not in event(member, "2.62")
    assert "details" not in event(member, "2.83")
    assert event(member, "2.84")["details"] == "it failed"


# --- flavors


@pytest.fixture
def flavor(db):
    return Flavor.objects.create(flavorid="f1", name="f1", vcpus=1, memory_mb=64,
                                 extra_specs={"hw:cpu_policy": "shared"}, description="small")


def _flavor(api, version):
    return api.get(f"{V}/flavors/f1", version=version).json()["flavor"]


def test_flavor_fields_by_microversion(member, api_as, flavor):
    api = api_as(member)
    assert "description" in _flavor(api, "2.55") and "description" not in _flavor(api, "2.54")
    assert _flavor(api, "2.61")["extra_specs"] == {"hw:cpu_policy": "shared"}
    assert "extra_specs" not in _flavor(api, "2.60")
    assert (_flavor(api, "2.74")["swap"], _flavor(api, "2.75")["swap"]) == ("", 0)
    assert "rxtx_factor" in _flavor(api, "2.101")
    assert "rxtx_factor" not in _flavor(api, "2.102")
    assert "OS-FLV-DISABLED:disabled" not in _flavor(api, "2.102")


def test_2_55_flavor_description_is_updated_by_admins(admin, member, api_as, flavor):
    body = {"flavor": {"description": "medium"}}
    assert api_as(admin).put(f"{V}/flavors/f1", body, version="2.54").status_code == 404
    assert api_as(member).put(f"{V}/flavors/f1", body, version="2.55").status_code == 403
    updated = api_as(admin).put(f"{V}/flavors/f1", body, version="2.55")
    assert updated.json()["flavor"]["description"] == "medium"


def test_2_102_flavors_filter_by_name_and_take_no_rxtx_factor(admin, api_as, flavor):
    api = api_as(admin)
    assert [f["id"] for f in api.get(f"{V}/flavors?name=f1",
                                     version="2.102").json()["flavors"]] == ["f1"]
    assert api.get(f"{V}/flavors?name=f1", version="2.101").status_code == 400
    assert len(api.get(f"{V}/flavors?name=zz", version="2.74").json()["flavors"]) == 1
    made = {"flavor": {"name": "f2", "ram": 64, "vcpus": 1, "disk": 0, "rxtx_factor": 2.0}}
    assert api.post(f"{V}/flavors", made, version="2.102").status_code == 400
    assert api.post(f"{V}/flavors", made, version="2.101").status_code == 200


def test_2_102_every_compute_api_refuses_unknown_query_parameters(member, api_as):
    api = api_as(member)
    assert api.get(f"{V}/os-keypairs?colour=blue", version="2.74").status_code == 200
    assert api.get(f"{V}/os-keypairs?colour=blue", version="2.75").status_code == 400
    assert api.get(f"{V}/limits?colour=blue", version="2.101").status_code == 200
    assert api.get(f"{V}/limits?colour=blue", version="2.102").status_code == 400
    assert api.get(f"{V}/limits?reserved=1", version="2.102").status_code == 200


# --- hypervisors and services


@pytest.fixture
def node(db):
    return make_node("compute-1")


def _hypervisor(api, node, version):
    ident = str(node.uuid) if version >= "2.53" else str(node.id)
    return api.get(f"{V}/os-hypervisors/{ident}", version=version)


def test_2_88_hypervisors_lose_their_counts_and_gain_uptime(admin, api_as, node):
    api = api_as(admin)
    new = _hypervisor(api, node, "2.88").json()["hypervisor"]
    old = _hypervisor(api, node, "2.87").json()["hypervisor"]
    assert "uptime" in new and "vcpus" not in new and "cpu_info" not in new
    assert "uptime" not in old and old["vcpus"] == node.vcpus
    assert api.get(f"{V}/os-hypervisors/statistics", version="2.88").status_code == 404
    assert api.get(f"{V}/os-hypervisors/statistics", version="2.87").status_code == 200


def test_uptime_below_2_88_is_nova_s_not_supported_until_the_host_reports_it(admin, api_as, node):
    api = api_as(admin)
    answer = api.get(f"{V}/os-hypervisors/{node.uuid}/uptime", version="2.87")
    assert answer.status_code == 501
    assert "notImplemented" in answer.json()
    assert _hypervisor(api, node, "2.88").json()["hypervisor"]["uptime"] is None
    assert api.get(f"{V}/os-hypervisors/{node.uuid}/uptime", version="2.88").status_code == 404
    missing = "00000000-0000-0000-0000-000000000000"
    assert api.get(f"{V}/os-hypervisors/{missing}/uptime", version="2.87").status_code == 404


def test_uptime_is_the_uptime_commands_line_from_what_the_host_reported(admin, api_as, node):
    now = timezone.now()
    node.booted_at = now - timedelta(days=3, hours=2, minutes=5, seconds=30)
    node.load_average = [0.1, 0.25, 1.5]
    node.save()
    api = api_as(admin)
    body = api.get(f"{V}/os-hypervisors/{node.uuid}/uptime", version="2.87").json()["hypervisor"]
    assert set(body) == {"id", "hypervisor_hostname", "state", "status", "uptime"}
    assert re.fullmatch(r" \d\d:\d\d:\d\d up 3 days,  2:0[56],  load average: 0.10, 0.25, 1.50",
                        body["uptime"]), body["uptime"]
    assert _hypervisor(api, node, "2.88").json()["hypervisor"]["uptime"] == body["uptime"]
    assert hypervisors.uptime_line(node, now=node.booted_at + timedelta(minutes=7)).endswith(
        " up 7 min,  load average: 0.10, 0.25, 1.50")


def test_2_53_with_servers_and_2_75_an_empty_list(admin, member, api_as, node):
    api = api_as(admin)
    url = f"{V}/os-hypervisors/{node.uuid}?with_servers=true"
    assert "servers" not in api.get(url, version="2.74").json()["hypervisor"]
    assert api.get(url, version="2.75").json()["hypervisor"]["servers"] == []
    server = make_server(member, host="compute-1")
    listed = api.get(url, version="2.53").json()["hypervisor"]["servers"]
    assert listed == [{"name": f"instance-{server.uuid}", "uuid": str(server.uuid)}]


def test_below_2_53_hypervisors_are_searched_on_their_own_routes(admin, api_as, node):
    api = api_as(admin)
    found = api.get(f"{V}/os-hypervisors/compute-1/search", version="2.52")
    assert [h["hypervisor_hostname"] for h in found.json()["hypervisors"]] == ["compute-1.local"]
    assert api.get(f"{V}/os-hypervisors/nomatch/search", version="2.52").status_code == 404
    assert api.get(f"{V}/os-hypervisors/compute-1/search", version="2.53").status_code == 404
    assert api.get(f"{V}/os-hypervisors/compute-1/servers", version="2.52").status_code == 200


def test_2_33_hypervisors_are_paged(admin, api_as, node):
    make_node("compute-2")
    api = api_as(admin)
    page = api.get(f"{V}/os-hypervisors?limit=1", version="2.33").json()
    assert len(page["hypervisors"]) == 1 and "hypervisors_links" in page
    assert len(api.get(f"{V}/os-hypervisors?limit=1",
                       version="2.32").json()["hypervisors"]) == 2


def test_below_2_53_services_are_enabled_and_disabled_by_host_and_binary(admin, api_as, node):
    api = api_as(admin)
    body = {"host": "compute-1", "binary": "nova-compute", "disabled_reason": "patching"}
    answer = api.put(f"{V}/os-services/disable-log-reason", body, version="2.52")
    assert answer.status_code == 200, answer.content
    assert answer.json()["service"] == {"host": "compute-1", "binary": "nova-compute",
                                        "status": "disabled", "disabled_reason": "patching"}
    assert ComputeNode.objects.get(pk=node.pk).service.disabled
    enabled = api.put(f"{V}/os-services/enable", {"host": "compute-1", "binary": "nova-compute"},
                      version="2.52")
    assert enabled.json()["service"]["status"] == "enabled"
    forced = api.put(f"{V}/os-services/force-down",
                     {"host": "compute-1", "binary": "nova-compute", "forced_down": True},
                     version="2.10")
    assert forced.status_code == 404  # force-down arrived with 2.11
    unknown = {"host": "nowhere", "binary": "nova-compute"}
    assert api.put(f"{V}/os-services/enable", unknown, version="2.52").status_code == 404


def test_2_64_server_group_rules_are_returned_and_only_anti_affinity_takes_them(member, api_as):
    api = api_as(member)
    body = {"server_group": {"name": "g", "policy": "anti-affinity",
                             "rules": {"max_server_per_host": 2}}}
    made = api.post(f"{V}/os-server-groups", body, version="2.64")
    assert made.status_code == 200, made.content
    group = made.json()["server_group"]
    assert (group["policy"], group["rules"]) == ("anti-affinity", {"max_server_per_host": 2})
    assert "policies" not in group
    bad = {"server_group": {"name": "g", "policy": "affinity",
                            "rules": {"max_server_per_host": 2}}}
    assert api.post(f"{V}/os-server-groups", bad, version="2.64").status_code == 400
    assert api.post(f"{V}/os-server-groups", body, version="2.63").status_code == 400


@pytest.mark.parametrize("key, bad, good", [
    ("hw:cpu_policy", "bogus", "dedicated"),
    ("hw:numa_nodes", "0", "2"),
    ("hw:mem_page_size", "huge", "2MB"),
    ("trait:HW_CPU_X86_AVX2", "maybe", "required"),
])
def test_2_86_known_extra_specs_are_validated(admin, api_as, flavor, key, bad, good):
    api = api_as(admin)
    url = f"{V}/flavors/f1/os-extra_specs"
    assert api.post(url, {"extra_specs": {key: bad}}, version="2.85").status_code == 200
    refused = api.post(url, {"extra_specs": {key: bad}}, version="2.86")
    assert refused.status_code == 400
    assert refused.json()["badRequest"]["message"].startswith("Validation failed;")
    assert api.put(f"{url}/{key}", {key: bad}, version="2.86").status_code == 400
    assert api.post(url, {"extra_specs": {key: good}}, version="2.86").status_code == 200
    # A key no rule names is the operator's own: stored as given.
    assert api.post(url, {"extra_specs": {"site:rack": "r1"}}, version="2.86").status_code == 200


# --- device tags (2.32, 2.42)


@pytest.mark.parametrize("version", ["2.32", "2.42"])
def test_tagged_networks_are_refused_as_hosts_expose_no_device_metadata(member, api_as, tiny,
                                                                        image, nets, version):
    networks = [{"uuid": str(nets["alpha"].id), "tag": "nic1"}]
    refused = boot(api_as(member), image, version=version, networks=networks)
    assert refused.status_code == 400
    assert "Device tagging" in refused.json()["badRequest"]["message"]
    assert not Instance.objects.exists()
    # Between 2.37 and 2.41 the tag is not part of the schema at all (Nova's bug, kept).
    unknown = boot(api_as(member), image, version="2.37", networks=networks)
    assert unknown.status_code == 400 and "Device tagging" not in str(unknown.json())
