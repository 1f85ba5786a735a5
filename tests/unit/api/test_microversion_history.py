"""Older microversions' changes without a test of their own elsewhere, each asked at its version
and at the one just below (docs/microversions.md points here)."""

from __future__ import annotations

import pytest

from cloud.compute.models import Migration
from tests.factories import make_node, make_server

pytestmark = pytest.mark.usefixtures("mv2104")
V = "/compute/v2.1"


def test_2_11_services_show_forced_down(admin, api_as):
    make_node("compute-1")
    api = api_as(admin)
    assert "forced_down" not in api.get(f"{V}/os-services", version="2.10").json()["services"][0]
    assert api.get(f"{V}/os-services", version="2.11").json()["services"][0]["forced_down"] is False


def test_2_28_cpu_info_is_an_object(admin, api_as):
    node = make_node("compute-1")
    node.cpu_info = {"arch": "x86_64"}
    node.save()
    api = api_as(admin)
    assert api.get(f"{V}/os-hypervisors/{node.id}",
                   version="2.27").json()["hypervisor"]["cpu_info"] == '{"arch": "x86_64"}'
    assert api.get(f"{V}/os-hypervisors/{node.id}",
                   version="2.28").json()["hypervisor"]["cpu_info"] == {"arch": "x86_64"}


@pytest.fixture
def migrated(member):
    server = make_server(member, host="compute-1")
    return Migration.objects.create(
        instance=server, migration_type="live-migration", status="running",
        source_compute="compute-1", source_node="compute-1.local", dest_compute="compute-2",
        dest_node="compute-2.local", user_id=str(member.user.id),
        project_id=str(member.project.id))


def test_2_23_a_server_s_migrations_and_the_migration_type(admin, api_as, migrated):
    api = api_as(admin)
    server = migrated.instance
    assert api.get(f"{V}/servers/{server.uuid}/migrations", version="2.22").status_code == 404
    listed = api.get(f"{V}/servers/{server.uuid}/migrations", version="2.23").json()["migrations"]
    assert [m["id"] for m in listed] == [migrated.pk]
    assert "migration_type" not in api.get(f"{V}/os-migrations",
                                           version="2.22").json()["migrations"][0]
    everyone = api.get(f"{V}/os-migrations", version="2.23").json()["migrations"][0]
    assert everyone["migration_type"] == "live-migration" and everyone["links"]


def test_2_59_uuid_and_2_80_owner_of_a_migration(admin, api_as, migrated):
    api = api_as(admin)

    def listed(version):
        return api.get(f"{V}/os-migrations", version=version).json()["migrations"][0]

    assert "uuid" not in listed("2.58") and listed("2.59")["uuid"] == str(migrated.uuid)
    assert "user_id" not in listed("2.79")
    assert (listed("2.80")["user_id"], listed("2.80")["project_id"]) == (
        migrated.user_id, migrated.project_id)


@pytest.mark.parametrize("key, args", [
    ("addFloatingIp", {"address": "203.0.113.9"}),
    ("removeFloatingIp", {"address": "203.0.113.9"}),
    ("addFixedIp", {"networkId": "n1"}),
    ("removeFixedIp", {"address": "10.0.0.9"}),
])
def test_2_44_network_proxy_actions_are_gone(member, api_as, key, args):
    server = make_server(member)
    api = api_as(member)
    url = f"{V}/servers/{server.uuid}/action"
    below = api.post(url, {key: args}, version="2.43")
    # No floating IP exists in this cloud; fixed IPs go through os-interface.
    assert below.status_code == (404 if "Floating" in key else 400)
    assert api.post(url, {key: args}, version="2.44").status_code == 404
    assert api.post(url, {key: {"bad": 1}}, version="2.43").status_code == 400


@pytest.mark.parametrize("version, body, schema_error", [
    ("2.24", {"host": None, "block_migration": "auto", "disk_over_commit": False}, True),
    ("2.25", {"host": None, "block_migration": "auto", "disk_over_commit": False}, True),
    ("2.25", {"host": None, "block_migration": "auto"}, False),
    ("2.29", {"host": None, "block_migration": "auto", "force": False}, True),
    ("2.30", {"host": None, "block_migration": "auto", "force": False}, False),
    ("2.68", {"host": None, "block_migration": "auto", "force": False}, True),
])
def test_2_25_and_2_30_live_migration_bodies(admin, member, api_as, version, body, schema_error):
    """2.25: block_migration may be "auto" and disk_over_commit is gone; 2.30-2.67: force."""
    server = make_server(member)
    answer = api_as(admin).post(f"{V}/servers/{server.uuid}/action", {"os-migrateLive": body},
                                version=version)
    refused = answer.status_code == 400 and "Invalid input" in str(answer.json())
    assert refused == schema_error, answer.content


def test_2_49_a_tagged_interface_attachment_is_refused_as_nova_refuses_it(member, api_as, nets):
    server = make_server(member)
    url = f"{V}/servers/{server.uuid}/os-interface"
    body = {"interfaceAttachment": {"net_id": str(nets["alpha"].id), "tag": "nic2"}}
    unknown = api_as(member).post(url, body, version="2.48")
    assert unknown.status_code == 400 and "tag" in unknown.json()["badRequest"]["message"]
    refused = api_as(member).post(url, body, version="2.49")
    assert refused.status_code == 400
    assert refused.json()["badRequest"]["message"] == (
        "Tagged network interface attachment is not supported for this server instance.")


def test_2_67_a_volume_type_is_taken_and_the_volume_refused(member, api_as, tiny, image):
    from tests.factories import boot

    device = {"boot_index": 0, "uuid": str(image.id), "source_type": "image",
              "destination_type": "volume", "volume_size": 1, "volume_type": "fast"}
    unknown = boot(api_as(member), image, version="2.66", block_device_mapping_v2=[device])
    assert unknown.status_code == 400
    assert "volume_type" in unknown.json()["badRequest"]["message"]
    refused = boot(api_as(member), image, version="2.67", block_device_mapping_v2=[device])
    assert refused.status_code == 400  # accepted from 2.67; then no such volume type
    assert "fast" in refused.json()["badRequest"]["message"]
