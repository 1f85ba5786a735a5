"""The detailed list reads servers as plain rows (cloud/compute/server_rows.py) while show reads a
model object: every listed server must still look exactly as its show body does, at every
microversion and for admins and members alike, so the two ways of reading cannot drift apart."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cloud.compute.models import InstanceFault, InstanceTag, ServerGroup
from cloud.compute.server_rows import Among
from cloud.images.models import Image
from cloud.network.models import Network, Port
from tests.factories import give_address, host_up, make_server

pytestmark = pytest.mark.usefixtures("mv2104")
V = "/compute/v2.1"
VERSIONS = ["2.1", "2.3", "2.16", "2.26", "2.47", "2.63", "2.71", "2.73", "2.90", "2.96", "2.98",
            "2.100", "2.104"]


@pytest.fixture
def servers(member, admin):
    """Servers that differ in everything a body shows: placed with an address, tags, a group,
    metadata, a lock and a launch time with and without a fraction of a second; failed with a
    fault on a host that went silent; still building with no host."""
    image = Image.objects.create(name="img", status="active", disk_format="qcow2",
                                 container_format="bare", owner=member.project,
                                 properties={"hw_disk_bus": "virtio", "other": "x"})
    placed = make_server(member, "placed", image_ref=str(image.id), locked=True,
                         locked_reason="maintenance", hostname="placed-host", key_name="k1",
                         availability_zone="nova", scheduler_hints={"group": "g"},
                         user_data="aGk=", metadata={"role": "web"}, description="d",
                         launched_at=datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
                         reservation_id="r-1", launch_index=2, config_drive=True)
    give_address(placed)
    InstanceTag.objects.create(instance=placed, tag="web")
    group = ServerGroup.objects.create(name="g", project=member.project, user=member.user,
                                       policy="affinity")
    group.members.create(instance=placed)
    failed = make_server(member, "failed", vm_state="error", host="silent",
                         launched_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
                         terminated_at=datetime(2026, 1, 3, tzinfo=UTC))
    host_up("silent", up=False)
    InstanceFault.objects.create(instance=failed, code=500, message="boom", details="trace")
    make_server(member, "building", vm_state="building", task_state="spawning", host=None,
                node=None, power_state="nostate")
    return placed


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("persona", ["member", "admin"])
def test_every_listed_server_looks_as_its_show_body_does(servers, member, admin, api_as,
                                                         persona, version):
    api = api_as({"member": member, "admin": admin}[persona])
    listed = api.get(f"{V}/servers/detail", version=version)
    assert listed.status_code == 200, listed.content
    bodies = listed.json()["servers"]
    assert {b["name"] for b in bodies} == {"placed", "failed", "building"}

    for body in bodies:
        shown = api.get(f"{V}/servers/{body['id']}", version=version).json()["server"]
        shown.pop("server_groups", None)  # the one key Nova leaves out of the list (2.71)
        assert body == shown


def test_listed_times_are_utc_to_the_second_and_launch_times_to_the_microsecond(servers,
                                                                                 member, api_as):
    bodies = {b["name"]: b for b in api_as(member).get(f"{V}/servers/detail").json()["servers"]}

    assert bodies["placed"]["OS-SRV-USG:launched_at"] == "2026-01-02T03:04:05.678901"
    assert bodies["failed"]["OS-SRV-USG:launched_at"] == "2026-01-02T03:04:05.000000"
    assert bodies["failed"]["OS-SRV-USG:terminated_at"] == "2026-01-03T00:00:00.000000"
    assert bodies["building"]["OS-SRV-USG:launched_at"] is None
    created = servers.created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert bodies["placed"]["created"] == created


def test_a_page_of_servers_is_looked_up_by_any_text_even_quotes_and_backslashes(db):
    network = Network.objects.create(name="n")
    odd = ['a"b', "c\\d", "e,f", "{g}", "plain"]
    for n, device in enumerate(odd):
        Port.objects.create(network=network, device_id=device, mac_address=f"fa:16:3e:00:01:{n:02x}")

    found = Port.objects.filter(Among("device_id", [*odd[:4], "missing"]))

    assert sorted(found.values_list("device_id", flat=True)) == sorted(odd[:4])
    Port.objects.create(network=network, device_id="", mac_address="fa:16:3e:00:02:00")
    assert not Port.objects.filter(Among("device_id", []))  # not even the unattached port
    assert not InstanceTag.objects.filter(Among("instance_id", []))  # a uuid column


def test_a_project_without_servers_lists_none(servers, other, api_as):
    for path in ("servers", "servers/detail"):
        response = api_as(other).get(f"{V}/{path}", version="2.100")
        assert response.status_code == 200, response.content
        assert response.json() == {"servers": []}


@pytest.mark.parametrize("version", ["2.97", "2.98", "2.100"])
def test_a_server_whose_image_ref_is_no_uuid_lists_and_shows(member, api_as, version):
    # Image refs are stored as given (an old import, an image service of another cloud): reading
    # the image's properties for 2.98 must not hand the database a value that is not a uuid.
    make_server(member, "odd-image", image_ref="not-a-uuid")
    api = api_as(member)

    listed = api.get(f"{V}/servers/detail", version=version)
    assert listed.status_code == 200, listed.content
    (body,) = listed.json()["servers"]
    shown = api.get(f"{V}/servers/{body['id']}", version=version)
    assert shown.status_code == 200, shown.content
    assert shown.json()["server"]["image"]["id"] == body["image"]["id"] == "not-a-uuid"
