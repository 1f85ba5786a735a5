"""createImage of a volume-backed server (Nova's snapshot_volume_backed): each volume snapshotted
through the volume service, even in use, an image with no data naming the snapshots in its
block_device_mapping, the server untouched; and a boot from that image makes new volumes from
the snapshots."""

from __future__ import annotations

import json

from django.utils import timezone

from cloud.compute.models import BlockDeviceMapping, Instance, InstanceAction
from cloud.images.models import Image
from cloud.volumes import transitions
from cloud.volumes.models import Volume, VolumeHost, VolumeSnapshot
from compute_agent import messages as msg
from tests.factories import V, make_server

ROOT_META = {"image_id": "5b8e2c1a-4a8e-4f51-9a43-1d2b7c3e9f00", "image_name": "cirros",
             "disk_format": "raw", "container_format": "bare", "min_ram": "64",
             "min_disk": "1", "size": "1024", "checksum": "x", "hw_disk_bus": "virtio",
             "img_signature": "not for the copy"}


def _volume(owner, host: VolumeHost, status: str = "in-use", **fields) -> Volume:
    volume = Volume.objects.create(project=owner.project, size=2, status=status, bootable=True,
                                   host=host, **fields)
    volume.connection = {"driver_volume_type": "nbd", "host": "10.77.0.50", "port": 10809,
                         "export": str(volume.pk)}
    volume.save(update_fields=["connection"])
    return volume


def _server(member, *, data_status: str = "in-use"):
    """A server booted from `root` (vda), with a data volume at vdb."""
    host = VolumeHost.objects.create(name="storage-1", total_gb=100, free_gb=100,
                                     last_seen=timezone.now())
    root = _volume(member, host, image_metadata=ROOT_META, description="root disk")
    data = _volume(member, host, status=data_status)
    server = make_server(member, image_ref="", root_gb=0)
    BlockDeviceMapping.objects.create(instance=server, volume_id=root.pk, device_name="/dev/vda",
                                      boot_index=0)
    BlockDeviceMapping.objects.create(instance=server, volume_id=data.pk, device_name="/dev/vdb",
                                      tag="data", delete_on_termination=True)
    return server, root, data


def _snapshot_image(api, server, version: str = "2.45"):
    return api.post(f"{V}/servers/{server.uuid}/action",
                    {"createImage": {"name": "snap", "metadata": {"purpose": "test"}}},
                    version=version)


def test_create_image_snapshots_each_volume_even_in_use_and_writes_an_image_naming_them(
    member, api_as, sent
):
    server, root, data = _server(member)
    response = _snapshot_image(api_as(member), server)
    assert response.status_code == 202, response.content
    image = Image.objects.get(pk=response.json()["image_id"])

    snapshots = {s.volume_id: s for s in VolumeSnapshot.objects.all()}
    assert set(snapshots) == {root.pk, data.pk}
    assert all(s.name == "snapshot for snap" for s in snapshots.values())
    assert snapshots[root.pk].description == "root disk"
    assert [name for name, _, _ in sent] == [msg.TASK_CREATE_VOLUME_SNAPSHOT] * 2

    assert (image.status, image.size, image.disk_format, image.container_format) == (
        "active", 0, "qcow2", "bare")
    assert (image.owner_id, image.visibility, image.min_ram, image.min_disk) == (
        member.project.pk, "private", 64, 1)
    properties = dict(image.properties)
    assert json.loads(properties.pop("block_device_mapping")) == [
        {"source_type": "snapshot", "destination_type": "volume",
         "snapshot_id": str(snapshots[root.pk].pk), "boot_index": 0, "device_name": "/dev/vda",
         "volume_size": 2, "delete_on_termination": False, "tag": None},
        {"source_type": "snapshot", "destination_type": "volume",
         "snapshot_id": str(snapshots[data.pk].pk), "boot_index": None,
         "device_name": "/dev/vdb", "volume_size": 2, "delete_on_termination": True,
         "tag": "data"},
    ]
    # The root volume's image properties as Nova copies them; not its source's attributes, nor
    # a signature of other bytes.
    assert properties == {"bdm_v2": "True", "root_device_name": "/dev/vda",
                          "hw_disk_bus": "virtio", "purpose": "test"}

    server.refresh_from_db()
    assert (server.vm_state, server.task_state) == ("active", None)
    assert InstanceAction.objects.filter(instance=server, action="createImage").count() == 1
    root.refresh_from_db()
    assert root.status == "in-use"

    shown = api_as(member).get(f"/image/v2/images/{image.pk}").json()
    assert (shown["status"], shown["size"], shown["bdm_v2"]) == ("active", 0, "True")


def test_below_2_45_the_answer_is_a_location(member, api_as, sent):
    server, _, _ = _server(member)
    response = _snapshot_image(api_as(member), server, version="2.1")
    assert response.status_code == 202
    assert response["Location"].endswith(f"/image/v2/images/{Image.objects.get().pk}")


def test_a_volume_that_cannot_be_snapshotted_leaves_no_snapshot_and_no_image(
    member, api_as, sent
):
    server, _, _ = _server(member, data_status="error")
    response = _snapshot_image(api_as(member), server)
    assert response.status_code == 400, response.content
    assert not VolumeSnapshot.objects.exists() and not Image.objects.exists() and sent == []
    assert not InstanceAction.objects.filter(action="createImage").exists()


def test_a_server_busy_with_a_task_refuses_it_with_409(member, api_as, sent):
    server, _, _ = _server(member)
    Instance.objects.filter(pk=server.pk).update(task_state="rebooting")
    assert _snapshot_image(api_as(member), server).status_code == 409
    assert not VolumeSnapshot.objects.exists() and not Image.objects.exists()


def _boot(api, image_id: str, **server):
    body = {"server": {"name": "again", "imageRef": image_id, "flavorRef": "1",
                       "networks": "none", **server}}
    return api.post(f"{V}/servers", body, version="2.67")


def test_booting_from_the_image_makes_volumes_from_its_snapshots_and_waits_for_them(
    member, api_as, tiny, sent
):
    server, root, data = _server(member)
    api = api_as(member)
    image_id = _snapshot_image(api, server).json()["image_id"]

    early = _boot(api, image_id)  # the snapshots are still being taken
    assert early.status_code == 400, early.content
    assert "Invalid snapshot" in early.json()["badRequest"]["message"]

    for snapshot in VolumeSnapshot.objects.all():
        assert transitions.move_snapshot(snapshot.pk, "available")
    sent.clear()
    response = _boot(api, image_id)
    assert response.status_code == 202, response.content
    instance = Instance.objects.get(display_name="again")
    assert (instance.image_ref, instance.root_gb, instance.task_state) == (
        "", 0, "block_device_mapping")
    snapshot_of = {s.volume_id: s.pk for s in VolumeSnapshot.objects.all()}
    made = {m.device_name: m for m in BlockDeviceMapping.objects.filter(instance=instance)}
    assert {name: (m.source_type, m.snapshot_id, m.boot_index, m.delete_on_termination, m.tag)
            for name, m in made.items()} == {
        "/dev/vda": ("snapshot", str(snapshot_of[root.pk]), 0, False, None),
        "/dev/vdb": ("snapshot", str(snapshot_of[data.pk]), None, True, "data"),
    }
    for mapping in made.values():
        volume = Volume.objects.get(pk=mapping.volume_id)
        assert (str(volume.snapshot_id), volume.status) == (mapping.snapshot_id, "creating")
    assert [name for name, _, _ in sent] == [msg.TASK_CREATE_VOLUME] * 2


def test_deleting_the_image_keeps_the_volume_snapshots(member, api_as, sent):
    server, _, _ = _server(member)
    api = api_as(member)
    image_id = _snapshot_image(api, server).json()["image_id"]
    assert api.delete(f"/image/v2/images/{image_id}").status_code == 204
    assert not Image.objects.exists()
    assert VolumeSnapshot.objects.count() == 2
