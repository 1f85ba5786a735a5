"""The Volumes panel (issue 17): create, attach to an instance, detach, extend, snapshot and delete
a volume, clicked through the Django test client as the shared personas; the volume host's and the
compute host's answers are applied as the conductor applies them. Checked by what the pages show
and by what the rows and the messages sent hold afterwards."""

from __future__ import annotations

import pytest

from cloud.conductor import volume_events
from cloud.conductor.instance_events import apply_instance_event
from cloud.outbox.models import OutboxMessage
from cloud.volumes.models import Volume, VolumeSnapshot
from compute_agent import messages as msg
from tests.factories import make_server

from .conftest import signed_in

pytestmark = pytest.mark.django_db

HOST = "vol-1"


@pytest.fixture
def volume_host(db) -> str:
    volume_events.apply_volume_host_report(msg.VolumeHostReport(
        host=HOST, backend="nbd", total_gb=100, free_gb=100))
    return HOST


def _page(response) -> str:
    return response.content.decode()


def _sent(task: str) -> list[dict]:
    return [m.args[0] for m in OutboxMessage.objects.filter(task=task).order_by("id")]


def _created(volume: Volume) -> None:
    volume_events.apply_volume_event(msg.VolumeEvent(
        request_id="req-test", volume_id=str(volume.pk), host=HOST,
        event=msg.EVENT_VOLUME_CREATED, size_gb=volume.size,
        connection={"driver_volume_type": "nbd", "host": "10.77.0.201", "port": 10809,
                    "export": str(volume.pk)}))


def _row(page: str, marker: str) -> str:
    row = page[page.index(marker):]
    return row[:row.index("</tr>")]


def test_a_volume_is_created_attached_detached_and_deleted_from_the_panel(member, volume_host):
    client = signed_in(member)
    server = make_server(member, "web1")
    created = client.post("/volumes/create", {"name": "data", "size": "2", "source": ""})
    assert created.status_code == 302, _page(created)
    volume = Volume.objects.get(name="data")
    assert created["Location"] == f"/volumes/{volume.id}/"
    assert [r["volume_id"] for r in _sent(msg.TASK_CREATE_VOLUME)] == [str(volume.id)]
    page = _page(client.get(f"/volumes/{volume.id}/"))
    assert "creating" in page and 'http-equiv="refresh"' in page
    assert 'id="attach-form"' not in page  # nothing to attach until it exists

    _created(volume)
    page = _page(client.get(f"/volumes/{volume.id}/"))
    assert "available" in page and 'http-equiv="refresh"' not in page
    assert f'value="{server.uuid}"' in page  # the project's instance is offered

    attached = client.post(f"/volumes/{volume.id}/attach", {"instance": str(server.uuid)})
    assert attached.status_code == 302, _page(attached)
    [request] = _sent(msg.TASK_ATTACH_VOLUME)
    assert request["device"]["volume_id"] == str(volume.id)
    assert request["device"]["device"] == "vdb"
    apply_instance_event(msg.InstanceEvent(
        request_id="req-test", instance_uuid=str(server.uuid), host=server.host,
        event=msg.EVENT_VOLUME_ATTACHED, power_state="running", volume_id=str(volume.id)))
    volume.refresh_from_db()
    assert volume.status == "in-use"
    listing = _page(client.get("/volumes/"))
    assert "web1" in _row(listing, f'data-volume="{volume.id}"')
    instance_page = _page(client.get(f"/instances/{server.uuid}/"))
    row = _row(instance_page, f'data-volume="{volume.id}"')
    assert "/dev/vdb" in row and "Detach" in row

    # An attached volume is not deleted: the reason is shown and the row stays.
    refused = client.post(f"/volumes/{volume.id}/delete", follow=True)
    assert Volume.objects.filter(pk=volume.pk, status="in-use").exists()
    assert "in-use" in _page(refused) or "attached" in _page(refused).lower()
    assert _sent(msg.TASK_DELETE_VOLUME) == []

    detached = client.post(f"/volumes/{volume.id}/detach/{server.uuid}", {"back": "instance"})
    assert detached.status_code == 302 and detached["Location"] == f"/instances/{server.uuid}/"
    [request] = _sent(msg.TASK_DETACH_VOLUME)
    apply_instance_event(msg.InstanceEvent(
        request_id="req-test", instance_uuid=str(server.uuid), host=server.host,
        event=msg.EVENT_VOLUME_DETACHED, power_state="running", volume_id=str(volume.id)))
    volume.refresh_from_db()
    assert volume.status == "available"

    deleted = client.post(f"/volumes/{volume.id}/delete")
    assert deleted.status_code == 302 and deleted["Location"] == "/volumes/"
    assert [r["volume_id"] for r in _sent(msg.TASK_DELETE_VOLUME)] == [str(volume.id)]


def test_extend_and_snapshot_send_the_host_their_work_and_bad_sizes_are_refused(member,
                                                                              volume_host):
    client = signed_in(member)
    client.post("/volumes/create", {"name": "grow", "size": "1", "source": ""})
    volume = Volume.objects.get(name="grow")
    _created(volume)
    smaller = client.post(f"/volumes/{volume.id}/extend", {"new_size": "1"})
    assert smaller.status_code == 400
    assert _sent(msg.TASK_EXTEND_VOLUME) == []
    grown = client.post(f"/volumes/{volume.id}/extend", {"new_size": "3"})
    assert grown.status_code == 302
    assert [r["size_gb"] for r in _sent(msg.TASK_EXTEND_VOLUME)] == [3]
    volume.refresh_from_db()
    assert volume.status == "extending"
    volume_events.apply_volume_event(msg.VolumeEvent(
        request_id="req-test", volume_id=str(volume.pk), host=HOST,
        event=msg.EVENT_VOLUME_EXTENDED, size_gb=3))
    snap = client.post(f"/volumes/{volume.id}/snapshot", {"name": "before"})
    assert snap.status_code == 302, _page(snap)
    snapshot = VolumeSnapshot.objects.get(name="before")
    assert [r["snapshot_id"] for r in _sent(msg.TASK_CREATE_VOLUME_SNAPSHOT)] == [str(snapshot.id)]
    page = _page(client.get(f"/volumes/{volume.id}/"))
    assert "3 GiB" in page and f'data-snapshot="{snapshot.id}"' in page


def test_a_reader_sees_volumes_but_no_forms_and_cannot_create(member, reader, volume_host):
    signed_in(member).post("/volumes/create", {"name": "shared-look", "size": "1", "source": ""})
    client = signed_in(reader)
    page = _page(client.get("/volumes/"))
    assert "shared-look" in page and 'id="volume-form"' not in page
    refused = client.post("/volumes/create", {"name": "nope", "size": "1", "source": ""})
    assert refused.status_code == 403
    assert not Volume.objects.filter(name="nope").exists()


def test_another_projects_volume_is_not_found(member, other, volume_host):
    signed_in(member).post("/volumes/create", {"name": "mine", "size": "1", "source": ""})
    volume = Volume.objects.get(name="mine")
    assert signed_in(other).get(f"/volumes/{volume.id}/").status_code == 404
    assert "mine" not in _page(signed_in(other).get("/volumes/"))
