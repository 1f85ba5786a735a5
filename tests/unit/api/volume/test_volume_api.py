"""The Block Storage v3 API as clients see it: discovery, microversions, Cinder's bodies (as
Tempest's schemas demand them per version and per caller) and its 4xx answers."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from cloud.volumes import statuses
from cloud.volumes.models import Volume
from compute_agent import messages as msg
from tests.personas import make_persona
from tests.unit.volumes.conftest import answer, created, report, sent


class VolumeApi:
    def __init__(self, persona, version: str | None = None):
        self.persona, self.version, self.client = persona, version, Client()
        self.base = f"/volume/v3/{persona.project.id}"

    def _headers(self, version):
        headers = {"HTTP_X_AUTH_TOKEN": self.persona.token}
        version = version or self.version
        if version:
            headers["HTTP_OPENSTACK_API_VERSION"] = f"volume {version}"
        return headers

    def call(self, method, path, body=None, version=None):
        data = "" if body is None else json.dumps(body)
        return self.client.generic(method, self.base + path, data,
                                   content_type="application/json", **self._headers(version))

    def get(self, path, version=None):
        return self.call("GET", path, version=version)

    def post(self, path, body, version=None):
        return self.call("POST", path, body, version)

    def put(self, path, body, version=None):
        return self.call("PUT", path, body, version)

    def delete(self, path, version=None):
        return self.call("DELETE", path, version=version)


@pytest.fixture
def api(db):
    report()
    admin = make_persona("v-admin", "alpha", ["admin", "member", "reader"])
    member = make_persona("v-bob", "alpha", ["member", "reader"])
    other = make_persona("v-mallory", "beta", ["member", "reader"])
    return VolumeApi(admin), VolumeApi(member), VolumeApi(other)


BASIC_KEYS = {"id", "name", "description", "size", "status", "availability_zone", "created_at",
              "updated_at", "attachments", "links", "encrypted", "replication_status",
              "snapshot_id", "source_volid", "user_id", "metadata", "multiattach",
              "consistencygroup_id", "bootable", "volume_type", "migration_status"}


def _create(client, size=1, **body):
    response = client.post("/volumes", {"volume": {"size": size, **body}})
    assert response.status_code == 202, response.content
    return response.json()["volume"]


def test_discovery_is_public_and_names_the_microversion_range(db):
    root = Client().get("/volume/")
    assert root.status_code == 300
    [v3] = root.json()["versions"]
    assert (v3["id"], v3["min_version"], v3["version"]) == ("v3.0", "3.0", "3.70")
    assert Client().get("/volume/v3").json()["versions"][0]["version"] == "3.70"


def test_the_microversion_is_echoed_and_one_out_of_range_is_406(api):
    _, member, _ = api
    response = member.get("/volumes", version="3.59")
    assert response.status_code == 200
    assert response["OpenStack-API-Version"] == "volume 3.59"
    refused = member.get("/volumes", version="3.99")
    assert refused.status_code == 406
    assert refused.json()["computeFault"]["code"] == 406
    assert member.get("/volumes", version="latest")["OpenStack-API-Version"] == "volume 3.70"


def test_create_show_and_list_bodies_have_cinders_keys_per_version_and_caller(api):
    admin, member, _ = api
    volume = _create(member, name="data")
    assert set(volume) == BASIC_KEYS  # 3.0: nothing newer, nothing of the reads' extensions
    assert volume["status"] == "creating" and volume["bootable"] == "false"
    assert volume["volume_type"] == "__DEFAULT__"
    shown = member.get(f"/volumes/{volume['id']}").json()["volume"]
    assert set(shown) == BASIC_KEYS | {"os-vol-tenant-attr:tenant_id"}
    as_admin = admin.get(f"/volumes/{volume['id']}").json()["volume"]
    assert as_admin["os-vol-host-attr:host"] == "vol-1@nbd#nbd"
    newer = member.get(f"/volumes/{volume['id']}", version="3.65").json()["volume"]
    assert {"group_id", "provider_id", "service_uuid", "shared_targets", "volume_type_id",
            "consumes_quota"} <= set(newer)
    listed = member.get("/volumes").json()["volumes"]
    assert listed == [{"id": volume["id"], "name": "data", "links": volume["links"]}]
    assert member.get("/volumes/detail").json()["volumes"][0]["id"] == volume["id"]


def test_errors_have_cinders_shape(api):
    _, member, other = api
    volume = _create(member)
    missing = other.get(f"/volumes/{volume['id']}")
    assert missing.status_code == 404
    assert missing.json() == {"itemNotFound": {
        "code": 404, "message": f"Volume {volume['id']} could not be found."}}
    bad = member.post("/volumes", {"volume": {"size": "big"}})
    assert bad.status_code == 400 and "badRequest" in bad.json()
    assert member.post("/volumes", {"volume": {"size": 0}}).status_code == 400
    assert member.post("/volumes", {"nothing": {}}).status_code == 400
    assert member.get("/nowhere").status_code == 404


def test_quota_over_the_limit_is_413_overlimit(api):
    admin, member, _ = api
    project = str(member.persona.project.id)
    assert admin.put(f"/os-quota-sets/{project}",
                     {"quota_set": {"gigabytes": 2}}).status_code == 200
    response = member.post("/volumes", {"volume": {"size": 3}})
    assert response.status_code == 413
    assert response.json()["overLimit"]["code"] == 413
    shown = member.get(f"/os-quota-sets/{project}?usage=true").json()["quota_set"]
    assert shown["gigabytes"] == {"limit": 2, "in_use": 0, "reserved": 0}
    assert {"id", "volumes", "snapshots", "backups", "groups", "per_volume_gigabytes",
            "backup_gigabytes", "volumes___DEFAULT__"} <= set(shown)
    assert member.put(f"/os-quota-sets/{project}",
                      {"quota_set": {"gigabytes": 20}}).status_code == 403
    assert admin.delete(f"/os-quota-sets/{project}").status_code == 200
    defaults = member.get(f"/os-quota-sets/{project}/defaults").json()["quota_set"]
    assert defaults["gigabytes"] == 1000


def test_actions_extend_reset_status_and_delete_answer_as_cinder(api):
    admin, member, _ = api
    volume = _create(member)
    created(volume["id"])
    path = f"/volumes/{volume['id']}"
    assert member.post(f"{path}/action", {"os-extend": {"new_size": 2}}).status_code == 202
    assert member.post(f"{path}/action", {"os-extend": {"new_size": 3}}).status_code == 400
    answer(volume["id"], msg.EVENT_VOLUME_EXTENDED, size_gb=2)
    assert member.get(path).json()["volume"]["size"] == 2
    assert member.post(f"{path}/action",
                       {"os-reset_status": {"status": "error"}}).status_code == 403
    assert admin.post(f"{path}/action",
                      {"os-reset_status": {"status": "error"}}).status_code == 202
    assert member.get(path).json()["volume"]["status"] == "error"
    assert member.post(f"{path}/action", {"os-frobnicate": {}}).status_code == 400
    assert member.delete(path).status_code == 202
    assert member.get(path).json()["volume"]["status"] == "deleting"
    assert sent(msg.TASK_DELETE_VOLUME)[0]["volume_id"] == volume["id"]
    answer(volume["id"], msg.EVENT_VOLUME_DELETED)
    assert member.get(path).status_code == 404


def test_snapshots_create_list_show_and_the_volume_refuses_delete(api):
    _, member, _ = api
    volume = _create(member)
    created(volume["id"])
    response = member.post("/snapshots", {"snapshot": {"volume_id": volume["id"], "name": "s1"}})
    assert response.status_code == 202, response.content
    snapshot = response.json()["snapshot"]
    assert set(snapshot) == {"id", "name", "description", "volume_id", "size", "status",
                             "metadata", "created_at", "updated_at"}
    answer(volume["id"], msg.EVENT_VOLUME_SNAPSHOT_CREATED, snapshot_id=snapshot["id"])
    shown = member.get(f"/snapshots/{snapshot['id']}").json()["snapshot"]
    assert shown["status"] == "available"
    assert shown["os-extended-snapshot-attributes:progress"] == "100%"
    assert [s["id"] for s in member.get("/snapshots/detail").json()["snapshots"]] == [
        snapshot["id"]]
    assert member.delete(f"/volumes/{volume['id']}").status_code == 400
    assert member.delete(f"/snapshots/{snapshot['id']}").status_code == 202
    answer(volume["id"], msg.EVENT_VOLUME_SNAPSHOT_DELETED, snapshot_id=snapshot["id"])
    assert member.get(f"/snapshots/{snapshot['id']}").status_code == 404


def test_types_admins_create_share_and_delete_them(api):
    admin, member, other = api
    listed = member.get("/types").json()["volume_types"]
    assert [t["name"] for t in listed] == ["__DEFAULT__"]
    made = admin.post("/types", {"volume_type": {
        "name": "gold", "os-volume-type-access:is_public": False,
        "extra_specs": {"tier": "1"}}})
    assert made.status_code == 200, made.content
    gold = made.json()["volume_type"]
    assert "qos_specs_id" not in gold and gold["extra_specs"] == {"tier": "1"}
    assert member.post("/types", {"volume_type": {"name": "x"}}).status_code == 403
    assert admin.post("/types", {"volume_type": {"name": "gold"}}).status_code == 409
    assert member.get(f"/types/{gold['id']}").status_code == 404  # private, not shared
    project = str(member.persona.project.id)
    assert admin.post(f"/types/{gold['id']}/action",
                      {"addProjectAccess": {"project": project}}).status_code == 202
    assert member.get(f"/types/{gold['id']}").status_code == 200
    assert other.get(f"/types/{gold['id']}").status_code == 404
    access = admin.get(f"/types/{gold['id']}/os-volume-type-access").json()
    assert access == {"volume_type_access": [{"volume_type_id": gold["id"],
                                              "project_id": project}]}
    assert admin.post(f"/types/{gold['id']}/extra_specs",
                      {"extra_specs": {"speed": "fast"}}).json() == {
                          "extra_specs": {"speed": "fast"}}
    assert admin.get(f"/types/{gold['id']}/extra_specs/speed").json() == {"speed": "fast"}
    volume = _create(member, volume_type="gold")
    assert volume["volume_type"] == "gold"
    assert admin.delete(f"/types/{gold['id']}").status_code == 400  # in use
    Volume.objects.filter(pk=volume["id"]).delete()
    assert admin.delete(f"/types/{gold['id']}").status_code == 202
    default = admin.get("/types/default").json()["volume_type"]
    assert admin.delete(f"/types/{default['id']}").status_code == 400


def test_limits_zones_services_and_messages(api):
    admin, member, _ = api
    _create(member, size=2)
    absolute = member.get("/limits").json()["limits"]["absolute"]
    assert (absolute["totalVolumesUsed"], absolute["totalGigabytesUsed"]) == (1, 2)
    zones = member.get("/os-availability-zone").json()["availabilityZoneInfo"]
    assert zones == [{"zoneName": "nova", "zoneState": {"available": True}}]
    services = admin.get("/os-services").json()["services"]
    assert [(s["binary"], s["host"], s["state"]) for s in services] == [
        ("cinder-volume", "vol-1@nbd", "up")]
    assert member.get("/os-services").status_code == 403
    disabled = admin.put("/os-services/disable", {"host": "vol-1@nbd", "binary": "cinder-volume"})
    assert disabled.json()["status"] == "disabled"
    assert _create(member)["status"] == statuses.ERROR  # the only host takes nothing new
    assert member.get("/messages").status_code == 404
    assert member.get("/messages", version="3.3").json() == {"messages": []}


def test_summary_counts_the_callers_volumes_from_3_12(api):
    _, member, other = api
    _create(member, size=2, metadata={"tier": "gold"})
    _create(member, size=3)
    assert member.get("/volumes/summary").status_code == 404
    summary = member.get("/volumes/summary", version="3.36").json()["volume-summary"]
    assert summary == {"total_size": 5, "total_count": 2, "metadata": {"tier": ["gold"]}}
    assert other.get("/volumes/summary", version="3.12").json() == {
        "volume-summary": {"total_size": 0, "total_count": 0}}


def test_attachments_reserve_connect_complete_and_delete_from_3_27(api):
    _, member, other = api
    volume = _create(member)
    created(volume["id"])
    server = "6f1c2b1e-0000-4000-8000-000000000001"
    body = {"attachment": {"volume_uuid": volume["id"], "instance_uuid": server}}
    assert member.post("/attachments", body).status_code == 404  # below 3.27
    assert other.post("/attachments", body, version="3.27").status_code == 404
    reserved = member.post("/attachments", body, version="3.27")
    assert reserved.status_code == 200, reserved.content
    attachment = reserved.json()["attachment"]
    assert (attachment["status"], attachment["connection_info"]) == ("reserved", None)
    assert member.get(f"/volumes/{volume['id']}").json()["volume"]["status"] == "reserved"
    # A second server cannot have it (no multiattach).
    again = {"attachment": {"volume_uuid": volume["id"], "instance_uuid": server[:-1] + "2"}}
    assert member.post("/attachments", again, version="3.27").status_code == 400
    path = f"/attachments/{attachment['id']}"
    updated = member.put(path, {"attachment": {"connector": {"host": "compute-1"}}},
                         version="3.27").json()["attachment"]
    assert updated["connection_info"]["export"] == volume["id"]
    assert updated["connection_info"]["driver_volume_type"] == "nbd"
    assert member.post(f"{path}/action", {"os-complete": None},
                       version="3.44").status_code == 204
    shown = member.get(f"/volumes/{volume['id']}").json()["volume"]
    assert shown["status"] == "in-use"
    assert member.delete(f"/volumes/{volume['id']}").status_code == 400
    listed = member.get("/attachments/detail", version="3.27").json()["attachments"]
    assert [a["status"] for a in listed] == ["attached"]
    assert other.get(path, version="3.27").status_code == 404
    assert member.delete(path, version="3.27").status_code == 200
    assert member.get(f"/volumes/{volume['id']}").json()["volume"]["status"] == "available"


def test_lists_page_with_next_links_and_reserve_is_once(api):
    _, member, _ = api
    made = [_create(member, name=f"p{i}")["id"] for i in range(3)]
    seen, path = [], "/volumes?limit=2&sort=name:asc"
    while path:
        body = member.get(path).json()
        seen += [v["id"] for v in body["volumes"]]
        links = body.get("volumes_links", [])
        path = links[0]["href"].split(member.base, 1)[1] if links else None
    assert seen == made
    assert member.get("/volumes?marker=nonsense").status_code == 404
    assert member.get("/snapshots?limit=x").status_code == 400
    volume = made[0]
    created(volume)
    assert member.post(f"/volumes/{volume}/action", {"os-reserve": {}}).status_code == 202
    assert member.post(f"/volumes/{volume}/action", {"os-reserve": {}}).status_code == 400
    assert member.post(f"/volumes/{volume}/action", {"os-unreserve": {}}).status_code == 202
    assert member.get(f"/volumes/{volume}").json()["volume"]["status"] == "available"
    missing = "00000000-0000-4000-8000-000000000000"
    assert member.post(f"/volumes/{missing}/action", {"os-reserve": {}}).status_code == 404
    assert member.post("/snapshots", {"snapshot": {"volume_id": None}}).status_code == 404


def test_retype_and_offset(api):
    admin, member, _ = api
    silver = admin.post("/types", {"volume_type": {"name": "silver"}}).json()["volume_type"]
    volumes = [_create(member, name=f"o{i}")["id"] for i in range(3)]
    for volume in volumes:
        created(volume)
    page = member.get("/volumes?offset=2&limit=3&sort=name:asc").json()["volumes"]
    assert [v["id"] for v in page] == volumes[2:]
    assert member.get("/volumes?offset=-1").status_code == 400
    path = f"/volumes/{volumes[0]}/action"
    assert member.post(path, {"os-retype": {"new_type": silver["id"]}}).status_code == 202
    assert member.get(f"/volumes/{volumes[0]}").json()["volume"]["volume_type"] == "silver"
    assert member.post(path, {"os-retype": {"new_type": "silver"}}).status_code == 400
    assert member.post(path, {"os-retype": {"new_type": "nothing"}}).status_code == 404
