"""Boot from volume: block_device_mapping_v2 (and the legacy mapping) checked with Nova's 400s,
the volumes made through the volume service and waited for, a boot volume as vda with no local
root disk claimed, its attachment in use once the guest runs, and kept or deleted with the
server as delete_on_termination says."""

from __future__ import annotations

import pytest
from django.utils import timezone

from cloud.compute import boot_volumes
from cloud.compute.models import BlockDeviceMapping, Instance
from cloud.compute.spawn import build_spawn_request
from cloud.conductor.instance_events import apply_instance_event
from cloud.volumes import transitions
from cloud.volumes.models import Volume, VolumeHost
from compute_agent import messages as msg
from tests.factories import V

CONNECTION = {"driver_volume_type": "nbd", "host": "10.77.0.50", "port": 10809}


def _volume(owner, status="available") -> Volume:
    volume = Volume.objects.create(project=owner.project, size=1, status=status, bootable=True)
    volume.connection = {**CONNECTION, "export": str(volume.pk)}
    volume.save(update_fields=["connection"])
    return volume


def _create(api, bdms, *, image_ref="", version="2.67", **server):
    body = {"server": {"name": "bfv", "imageRef": image_ref, "flavorRef": "1",
                       "networks": "none", "block_device_mapping_v2": bdms, **server}}
    return api.post(f"{V}/servers", body, version=version)


def _schedules(sent) -> list[str]:
    return [payload for name, (payload, *_), _ in sent if name == msg.TASK_SCHEDULE_INSTANCE]


# --- Nova's 400s


@pytest.mark.parametrize("bdms, words", [
    ([{"source_type": "image", "destination_type": "volume", "uuid":
       "5b8e2c1a-4a8e-4f51-9a43-1d2b7c3e9f00", "boot_index": 0}], "non-zero size"),
    ([{"source_type": "blank", "destination_type": "volume", "boot_index": 0}], "non-zero size"),
    ([{"source_type": "volume", "destination_type": "volume", "uuid": "nope",
       "boot_index": 0}], "uuid"),
    ([{"source_type": "blank", "destination_type": "local", "volume_size": 1}], "ephemeral"),
    ([{"source_type": "blank", "destination_type": "volume", "volume_size": 1,
       "boot_index": 1}], "Boot sequence"),
    ([{"source_type": "blank", "destination_type": "volume", "volume_size": 1}],
     "Missing imageRef"),
])
def test_a_mapping_nova_refuses_is_400_and_makes_nothing(member, api_as, tiny, sent, bdms,
                                                         words):
    response = _create(api_as(member), bdms)
    assert response.status_code == 400, response.content
    assert words in response.json()["badRequest"]["message"]
    assert not Instance.objects.exists() and not Volume.objects.exists() and sent == []


def test_one_volume_cannot_boot_two_servers_nor_an_in_use_one(member, api_as, tiny, sent):
    volume = _volume(member)
    bdm = [{"source_type": "volume", "destination_type": "volume", "uuid": str(volume.pk),
            "boot_index": 0}]
    api = api_as(member)
    assert _create(api, bdm, min_count=2).status_code == 400
    volume.status = "in-use"
    volume.save()
    assert _create(api, bdm).status_code == 400
    assert not Instance.objects.exists()


def test_a_volume_that_is_not_bootable_cannot_be_booted_from(member, api_as, tiny, sent):
    volume = _volume(member)
    Volume.objects.filter(pk=volume.pk).update(bootable=False)
    response = _create(api_as(member), [{"source_type": "volume", "destination_type": "volume",
                                         "uuid": str(volume.pk), "boot_index": 0}])
    assert response.status_code == 400, response.content
    assert "is not bootable" in response.json()["badRequest"]["message"]
    assert not Instance.objects.exists() and sent == []
    volume.refresh_from_db()
    assert volume.status == "available"


# --- from an existing volume


def test_a_server_boots_from_a_volume_with_no_image_and_no_local_disk_claimed(
    member, api_as, tiny, sent
):
    volume = _volume(member)
    response = _create(api_as(member), [{
        "source_type": "volume", "destination_type": "volume", "uuid": str(volume.pk),
        "boot_index": 0, "delete_on_termination": False}])
    assert response.status_code == 202, response.content
    instance = Instance.objects.get()
    assert (instance.image_ref, instance.root_gb, instance.task_state) == ("", 0, "scheduling")
    assert len(_schedules(sent)) == 1
    volume.refresh_from_db()
    assert volume.status == "reserved"
    spawn = build_spawn_request(instance, "req-1", host="compute1")
    assert spawn.image is None
    assert [(d.volume_id, d.device, d.boot_index, d.connection["export"])
            for d in spawn.block_devices] == [(str(volume.pk), "vda", 0, str(volume.pk))]

    Instance.objects.filter(pk=instance.pk).update(task_state="spawning", host="compute1",
                                                   node="compute1")
    apply_instance_event(msg.InstanceEvent(request_id="r", instance_uuid=str(instance.uuid),
                                           host="compute1", event=msg.EVENT_SPAWNED,
                                           power_state="running"))
    volume.refresh_from_db()
    assert (volume.status, volume.attach_status) == ("in-use", "attached")

    from cloud.compute.servers import complete_delete

    complete_delete(str(instance.uuid))  # delete_on_termination false: the volume stays
    volume.refresh_from_db()
    assert (volume.status, volume.attach_status) == ("available", "detached")
    assert not BlockDeviceMapping.objects.exists()


def test_the_legacy_mapping_boots_from_a_volume_named_for_vda(member, api_as, tiny, sent):
    volume = _volume(member)
    body = {"server": {"name": "old", "flavorRef": "1", "networks": "none",
                       "block_device_mapping": [{"volume_id": str(volume.pk),
                                                 "device_name": "/dev/vda"}]}}
    response = api_as(member).post(f"{V}/servers", body, version="2.37")
    assert response.status_code == 202, response.content
    mapping = BlockDeviceMapping.objects.get()
    assert (mapping.boot_index, mapping.device_name, str(mapping.volume_id)) == (
        0, "/dev/vda", str(volume.pk))


# --- a volume made from an image, waited for


def test_an_image_to_volume_boot_waits_for_the_volume_then_is_scheduled(
    member, api_as, tiny, image, sent
):
    VolumeHost.objects.create(name="storage-1", total_gb=100, free_gb=100,
                              last_seen=timezone.now())
    response = _create(api_as(member), [{
        "source_type": "image", "destination_type": "volume", "uuid": str(image.id),
        "volume_size": 2, "boot_index": 0, "delete_on_termination": True}],
        image_ref=str(image.id))
    assert response.status_code == 202, response.content
    instance = Instance.objects.get()
    volume = Volume.objects.get()
    assert (instance.task_state, volume.status, volume.size) == ("block_device_mapping",
                                                                 "creating", 2)
    assert _schedules(sent) == []
    assert [name for name, _, _ in sent] == [msg.TASK_CREATE_VOLUME]

    boot_volumes.volume_changed(str(volume.pk))  # still creating: nothing happens
    assert _schedules(sent) == []
    transitions.move(volume.pk, "available", connection={**CONNECTION, "export": str(volume.pk)})
    boot_volumes.volume_changed(str(volume.pk))
    instance.refresh_from_db()
    volume.refresh_from_db()
    assert (instance.task_state, volume.status) == ("scheduling", "reserved")
    assert len(_schedules(sent)) == 1


def test_a_volume_that_cannot_be_made_fails_the_build_with_a_fault(
    member, api_as, tiny, image, sent
):
    VolumeHost.objects.create(name="storage-1", total_gb=100, free_gb=100,
                              last_seen=timezone.now())
    _create(api_as(member), [{"source_type": "blank", "destination_type": "volume",
                              "volume_size": 1, "boot_index": 0}])
    volume = Volume.objects.get()
    Volume.objects.filter(pk=volume.pk).update(status="error", status_reason="disk full")
    boot_volumes.volume_changed(str(volume.pk))
    instance = Instance.objects.get()
    assert (instance.vm_state, instance.task_state) == ("error", None)
    assert "disk full" in instance.faults.get().message


def test_with_no_volume_host_the_boot_is_refused_and_leaves_nothing(member, api_as, tiny, sent):
    response = _create(api_as(member), [{"source_type": "blank", "destination_type": "volume",
                                         "volume_size": 1, "boot_index": 0}])
    assert response.status_code == 400
    assert not Instance.objects.exists() and not Volume.objects.exists()


def _volume_backed(member, volume, **mapping):
    from tests.factories import make_server

    server = make_server(member, image_ref="", root_gb=0)
    BlockDeviceMapping.objects.create(instance=server, volume_id=volume.pk,
                                      device_name="/dev/vda", boot_index=0, **mapping)
    return server


def test_a_volume_backed_backup_and_rescue_are_400_with_the_reason(member, api_as, tiny, sent):
    # Its createImage snapshots the volumes: tests/unit/compute/test_volume_backed_snapshot.py.
    server = _volume_backed(member, _volume(member, status="in-use"))
    api = api_as(member)
    url = f"{V}/servers/{server.uuid}/action"
    backup = api.post(url, {"createBackup": {"name": "b", "backup_type": "daily",
                                             "rotation": 1}})
    assert backup.status_code == 400
    assert "root disk is a volume" in backup.json()["badRequest"]["message"]
    assert api.post(url, {"rescue": {}}).status_code == 400
    server.refresh_from_db()
    assert server.task_state is None and sent == []


def test_delete_on_termination_deletes_the_volume_with_its_server(member, sent):
    from cloud.compute.servers import complete_delete
    from cloud.volumes import attachments

    host = VolumeHost.objects.create(name="storage-1", total_gb=10, free_gb=9,
                                     last_seen=timezone.now())
    volume = _volume(member)
    Volume.objects.filter(pk=volume.pk).update(host=host)
    attachment = attachments.reserve(volume.pk, "0" * 32)
    server = _volume_backed(member, volume, delete_on_termination=True,
                            attachment_id=attachment.pk)
    attachment.instance_uuid = server.uuid
    attachment.save()
    complete_delete(str(server.uuid))
    volume.refresh_from_db()
    assert volume.status == "deleting"
    assert [name for name, _, _ in sent] == [msg.TASK_DELETE_VOLUME]


def test_a_volume_backed_rebuild_may_only_name_the_image_its_volume_came_from(
    member, api_as, tiny, image, sent
):
    volume = _volume(member, status="in-use")
    Volume.objects.filter(pk=volume.pk).update(image_id=image.id)
    server = _volume_backed(member, volume)
    other = image.__class__.objects.create(name="other", status="active", disk_format="qcow2",
                                           container_format="bare", owner=member.project,
                                           visibility="private", size=1)
    api = api_as(member)
    url = f"{V}/servers/{server.uuid}/action"
    refused = api.post(url, {"rebuild": {"imageRef": str(other.id)}})
    assert refused.status_code == 400, refused.content
    assert api.post(url, {"rebuild": {"imageRef": str(image.id)}}).status_code == 202
    server.refresh_from_db()
    assert (server.task_state, server.image_ref) == ("rebuilding", "")
    (rebuild,) = [payload for name, (payload, *_), _ in sent if name == msg.TASK_REBUILD]
    assert [d["device"] for d in rebuild["block_devices"]] == ["vda"]


def test_a_volume_backed_shelve_saves_no_image_and_unshelve_boots_from_its_volume(
    member, api_as, tiny, sent, settings
):
    from cloud.images.models import Image

    settings.KUMO_SHELVED_OFFLOAD_TIME = 0
    volume = _volume(member, status="in-use")
    server = _volume_backed(member, volume)
    api = api_as(member)
    url = f"{V}/servers/{server.uuid}/action"
    assert api.post(url, {"shelve": None}).status_code == 202
    ((name, (payload,), _),) = sent
    assert (name, payload["upload_url"], payload["offload"]) == (msg.TASK_SHELVE, "", True)
    assert not Image.objects.exists()
    apply_instance_event(msg.InstanceEvent(request_id="r", instance_uuid=str(server.uuid),
                                           host="compute1", event=msg.EVENT_SHELVE_OFFLOADED,
                                           power_state="shutdown"))
    server.refresh_from_db()
    assert (server.vm_state, server.host) == ("shelved_offloaded", None)
    volume.refresh_from_db()
    assert volume.status == "in-use"  # still the server's while it is shelved
    assert api.post(url, {"unshelve": None}).status_code == 202
    assert len(_schedules(sent)) == 1
    spawn = build_spawn_request(Instance.objects.get(pk=server.pk), "r", host="compute2")
    assert spawn.restore_from is None and spawn.image is None
    assert [(d.device, d.boot_index) for d in spawn.block_devices] == [("vda", 0)]
