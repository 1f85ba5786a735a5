"""Volumes and snapshots through their whole lives: the service functions as the API calls them,
the volume host's answers through the conductor, and the deadlines for a host that never answers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from cloud import errors
from cloud.conductor import volume_events
from cloud.images.models import Image
from cloud.volumes import quotas, snapshots, statuses, types, volumes
from cloud.volumes.models import Volume, VolumeHost, VolumeSnapshot
from compute_agent import messages as msg

from .conftest import HOST, answer, created, report, sent


def _available(ctx, size=1, **body):
    volume = volumes.create_volume(ctx, {"size": size, **body})
    created(volume, size)
    volume.refresh_from_db()
    assert volume.status == statuses.AVAILABLE
    return volume


def test_a_new_volume_goes_to_the_reporting_host_and_is_available_when_it_answers(people,
                                                                                  volume_host):
    _, ctx = people["member"]
    volume = volumes.create_volume(ctx, {"size": 2, "name": "data", "metadata": {"k": "v"}})
    assert volume.status == statuses.CREATING
    assert volume.host.name == HOST
    assert volume.volume_type.name == types.DEFAULT_TYPE
    [request] = sent(msg.TASK_CREATE_VOLUME)
    assert request["volume_id"] == str(volume.pk) and request["size_gb"] == 2
    created(volume, 2)
    volume.refresh_from_db()
    assert volume.status == statuses.AVAILABLE
    assert volume.connection["export"] == str(volume.pk)


def test_no_host_up_means_an_error_volume_with_the_reason_and_nothing_sent(people, db):
    _, ctx = people["member"]
    report()
    VolumeHost.objects.update(last_seen=timezone.now() - timedelta(hours=1))
    volume = volumes.create_volume(ctx, {"size": 1})
    assert volume.status == statuses.ERROR
    assert "No valid backend" in volume.status_reason
    assert sent(msg.TASK_CREATE_VOLUME) == []
    volumes.delete_volume(ctx, volume.pk)  # nothing on any host: the row simply goes
    assert not Volume.objects.filter(pk=volume.pk).exists()


def test_placement_counts_the_room_volumes_still_being_created_take(people, db):
    _, ctx = people["member"]
    report("vol-a", free_gb=10)
    report("vol-b", free_gb=8)
    first = volumes.create_volume(ctx, {"size": 5})
    second = volumes.create_volume(ctx, {"size": 5})
    # vol-a looked emptiest for both, but after the first it has 5 left against vol-b's 8.
    assert (first.host.name, second.host.name) == ("vol-a", "vol-b")
    VolumeHost.objects.filter(name="vol-b").update(disabled=True)
    third = volumes.create_volume(ctx, {"size": 6})
    assert third.status == statuses.ERROR  # vol-a has 5 left, vol-b takes nothing new


def test_a_failed_create_is_an_error_with_the_hosts_words(people, volume_host):
    _, ctx = people["member"]
    volume = volumes.create_volume(ctx, {"size": 1})
    answer(volume, msg.EVENT_VOLUME_ACTION_FAILED, action=msg.VOLUME_ACTION_CREATE,
           message="qemu-img: disk full")
    volume.refresh_from_db()
    assert (volume.status, volume.status_reason) == (statuses.ERROR, "qemu-img: disk full")


def test_an_event_from_a_host_that_does_not_hold_the_volume_changes_nothing(people, volume_host):
    _, ctx = people["member"]
    volume = volumes.create_volume(ctx, {"size": 1})
    answer(volume, msg.EVENT_VOLUME_CREATED, host="vol-evil", size_gb=1)
    volume.refresh_from_db()
    assert volume.status == statuses.CREATING


def test_extend_only_grows_an_available_volume_and_ends_with_the_new_size(people, volume_host):
    _, ctx = people["member"]
    volume = _available(ctx)
    with pytest.raises(errors.BadRequest, match="greater than current size"):
        volumes.extend_volume(ctx, volume.pk, 1)
    volumes.extend_volume(ctx, volume.pk, 3)
    volume.refresh_from_db()
    assert volume.status == statuses.EXTENDING
    with pytest.raises(errors.BadRequest, match="must be available"):
        volumes.extend_volume(ctx, volume.pk, 4)
    assert sent(msg.TASK_EXTEND_VOLUME)[0]["size_gb"] == 3
    answer(volume, msg.EVENT_VOLUME_EXTENDED, size_gb=3)
    volume.refresh_from_db()
    assert (volume.status, volume.size) == (statuses.AVAILABLE, 3)


def test_a_failed_extend_is_error_extending_and_the_volume_can_still_be_deleted(people,
                                                                                volume_host):
    _, ctx = people["member"]
    volume = _available(ctx)
    volumes.extend_volume(ctx, volume.pk, 2)
    answer(volume, msg.EVENT_VOLUME_ACTION_FAILED, action=msg.VOLUME_ACTION_EXTEND,
           message="no room")
    volume.refresh_from_db()
    assert (volume.status, volume.size) == (statuses.ERROR_EXTENDING, 1)
    volumes.delete_volume(ctx, volume.pk)
    answer(volume, msg.EVENT_VOLUME_DELETED)
    assert not Volume.objects.filter(pk=volume.pk).exists()


def test_delete_is_refused_with_snapshots_unless_cascade(people, volume_host):
    _, ctx = people["member"]
    volume = _available(ctx)
    snapshot = snapshots.create_snapshot(ctx, {"volume_id": str(volume.pk), "name": "s"})
    assert sent(msg.TASK_CREATE_VOLUME_SNAPSHOT)[0]["snapshot_id"] == str(snapshot.pk)
    answer(volume, msg.EVENT_VOLUME_SNAPSHOT_CREATED, snapshot_id=str(snapshot.pk))
    snapshot.refresh_from_db()
    assert snapshot.status == statuses.AVAILABLE
    with pytest.raises(errors.BadRequest, match="have snapshots"):
        volumes.delete_volume(ctx, volume.pk)
    volumes.delete_volume(ctx, volume.pk, cascade=True)
    volume.refresh_from_db()
    snapshot.refresh_from_db()
    assert (volume.status, snapshot.status) == (statuses.DELETING, statuses.DELETING)
    answer(volume, msg.EVENT_VOLUME_DELETED)
    assert not Volume.objects.filter(pk=volume.pk).exists()
    assert not VolumeSnapshot.objects.filter(pk=snapshot.pk).exists()


def test_an_in_use_volume_cannot_be_deleted(people, volume_host):
    _, ctx = people["member"]
    volume = _available(ctx)
    Volume.objects.filter(pk=volume.pk).update(status=statuses.IN_USE,
                                               attach_status=statuses.ATTACHED)
    with pytest.raises(errors.BadRequest):
        volumes.delete_volume(ctx, volume.pk)
    assert sent(msg.TASK_DELETE_VOLUME) == []


def test_a_volume_from_a_snapshot_is_made_on_the_snapshots_host(people, db):
    _, ctx = people["member"]
    report("vol-a", free_gb=100)
    source = _available_on(ctx, "vol-a")
    snapshot = snapshots.create_snapshot(ctx, {"volume_id": str(source.pk)})
    answer(source, msg.EVENT_VOLUME_SNAPSHOT_CREATED, snapshot_id=str(snapshot.pk), host="vol-a")
    report("vol-b", free_gb=1000)
    copy = volumes.create_volume(ctx, {"snapshot_id": str(snapshot.pk)})
    assert copy.host.name == "vol-a" and copy.size == 1 and copy.snapshot_id == snapshot.pk
    request = sent(msg.TASK_CREATE_VOLUME)[-1]
    assert (request["source"], request["snapshot_id"]) == (msg.SOURCE_SNAPSHOT, str(snapshot.pk))
    with pytest.raises(errors.BadRequest, match="smaller than the snapshot"):
        Volume.objects.filter(pk=snapshot.volume_id).update(size=3)
        VolumeSnapshot.objects.filter(pk=snapshot.pk).update(size=3)
        volumes.create_volume(ctx, {"snapshot_id": str(snapshot.pk), "size": 2})


def _available_on(ctx, host):
    volume = volumes.create_volume(ctx, {"size": 1})
    assert volume.host.name == host
    answer(volume, msg.EVENT_VOLUME_CREATED, size_gb=1, host=host)
    return volume


def test_a_volume_from_an_image_carries_its_download_and_is_bootable(people, volume_host):
    persona, ctx = people["member"]
    image = Image.objects.create(name="cirros", disk_format="qcow2", container_format="bare",
                                 owner=persona.project, visibility="private", status="active",
                                 size=5 * 2**20, virtual_size=2 * 2**30 + 1, min_disk=0)
    volume = volumes.create_volume(ctx, {"imageRef": str(image.pk)})
    assert volume.size == 3 and volume.bootable  # the image's virtual size, rounded up
    assert volume.image_metadata["image_id"] == str(image.pk)
    request = sent(msg.TASK_CREATE_VOLUME)[0]
    assert request["source"] == msg.SOURCE_IMAGE
    assert request["image"]["url"].endswith(f"/image/v2/images/{image.pk}/file")
    assert request["image"]["token"]
    with pytest.raises(errors.BadRequest, match="larger than volume size"):
        volumes.create_volume(ctx, {"imageRef": str(image.pk), "size": 1})


def test_upload_to_image_makes_a_queued_image_and_the_volume_comes_back(people, volume_host):
    _, ctx = people["member"]
    volume = _available(ctx)
    volume, image = volumes.upload_to_image(ctx, volume.pk, {"image_name": "backup",
                                                             "disk_format": "qcow2"})
    assert (volume.status, image.status) == (statuses.UPLOADING, "queued")
    request = sent(msg.TASK_UPLOAD_VOLUME)[0]
    assert request["image"]["id"] == str(image.pk) and request["image"]["token"]
    answer(volume, msg.EVENT_VOLUME_UPLOADED, image_id=str(image.pk))
    volume.refresh_from_db()
    assert volume.status == statuses.AVAILABLE


def test_quota_counts_volumes_and_gigabytes_and_answers_413(people, volume_host):
    _, admin = people["admin"]
    persona, ctx = people["member"]
    project = str(persona.project.id)
    quotas.update_quota(admin, project, {"volumes": 2, "gigabytes": 5})
    _available(ctx, size=2)
    with pytest.raises(quotas.OverQuota, match="gigabytes") as refused:
        volumes.create_volume(ctx, {"size": 4})
    assert refused.value.status == 413
    volumes.create_volume(ctx, {"size": 3})
    with pytest.raises(quotas.OverQuota, match="Maximum number of volumes"):
        volumes.create_volume(ctx, {"size": 1})
    usage = quotas.get_usage(ctx, project)
    assert usage["volumes"] == {"limit": 2, "in_use": 2, "reserved": 0}
    assert usage["gigabytes"]["in_use"] == 5
    assert usage[f"volumes_{types.DEFAULT_TYPE}"]["in_use"] == 2
    with pytest.raises(errors.BadRequest, match="already used"):
        quotas.update_quota(admin, project, {"volumes": 1}, validate=True)
    quotas.update_quota(admin, project, {"volumes": 1})  # Cinder's default: no check
    with pytest.raises(errors.Forbidden):
        quotas.update_quota(ctx, project, {"volumes": 20})


def test_extend_past_the_gigabytes_quota_is_413(people, volume_host):
    persona, ctx = people["member"]
    quotas.update_quota(people["admin"][1], str(persona.project.id), {"gigabytes": 3})
    volume = _available(ctx, size=2)
    with pytest.raises(quotas.OverQuota):
        volumes.extend_volume(ctx, volume.pk, 4)
    volume.refresh_from_db()
    assert volume.status == statuses.AVAILABLE


def test_another_projects_volume_is_missing_and_readers_cannot_write(people, volume_host):
    _, ctx = people["member"]
    volume = _available(ctx)
    with pytest.raises(errors.NotFound):
        volumes.get_volume(people["other"][1], volume.pk)
    with pytest.raises(errors.NotFound):
        volumes.delete_volume(people["other"][1], volume.pk)
    with pytest.raises(errors.Forbidden):
        volumes.update_volume(people["reader"][1], volume.pk, {"name": "x"})
    assert volumes.get_volume(people["reader"][1], volume.pk).pk == volume.pk
    assert list(volumes.list_volumes(people["other"][1], {})) == []


def test_reset_status_is_for_admins_and_takes_any_known_status(people, volume_host):
    _, ctx = people["member"]
    volume = volumes.create_volume(ctx, {"size": 1})
    with pytest.raises(errors.Forbidden):
        volumes.reset_status(ctx, volume.pk, {"status": "available"})
    with pytest.raises(errors.BadRequest):
        volumes.reset_status(people["admin"][1], volume.pk, {"status": "bogus"})
    volumes.reset_status(people["admin"][1], volume.pk, {"status": "error"})
    volume.refresh_from_db()
    assert volume.status == statuses.ERROR


def test_deadlines_end_a_create_nobody_answers_and_resend_a_delete(people, volume_host):
    _, ctx = people["member"]
    stuck = volumes.create_volume(ctx, {"size": 1})
    gone = _available(ctx)
    volumes.delete_volume(ctx, gone.pk)
    assert len(sent(msg.TASK_DELETE_VOLUME)) == 1
    volume_events.check_deadlines()
    stuck.refresh_from_db()
    assert stuck.status == statuses.CREATING  # not yet
    long_ago = timezone.now() - timedelta(hours=1)
    Volume.objects.update(updated_at=long_ago)
    done = volume_events.check_deadlines()
    stuck.refresh_from_db()
    assert stuck.status == statuses.ERROR and HOST in stuck.status_reason
    assert done == {"volumes failed": 1, "deletes re-sent": 1}
    assert len(sent(msg.TASK_DELETE_VOLUME)) == 2


def test_list_filters_sorts_and_pages(people, volume_host):
    _, ctx = people["member"]
    made = [_available(ctx, size=size, name=f"v{size}") for size in (1, 2, 3)]
    by_size = list(volumes.list_volumes(ctx, {"sort": "size:asc"}))
    assert [v.size for v in by_size] == [1, 2, 3]
    page = list(volumes.list_volumes(ctx, {"sort": "size:asc", "limit": "1",
                                           "marker": str(made[0].pk)}))
    assert [v.size for v in page] == [2]
    assert [v.name for v in volumes.list_volumes(ctx, {"name": "v3"})] == ["v3"]
    with pytest.raises(errors.BadRequest):
        list(volumes.list_volumes(ctx, {"sort": "nonsense"}))


def test_failed_delete_upload_and_snapshot_say_why_and_leave_the_volume_usable(people,
                                                                             volume_host):
    _, ctx = people["member"]
    volume = _available(ctx)
    volume, image = volumes.upload_to_image(ctx, volume.pk, {"image_name": "copy"})
    answer(volume, msg.EVENT_VOLUME_ACTION_FAILED, action=msg.VOLUME_ACTION_UPLOAD,
           image_id=str(image.pk), message="upload refused")
    volume.refresh_from_db()
    assert (volume.status, volume.status_reason) == (statuses.AVAILABLE, "upload refused")
    assert not Image.objects.filter(pk=image.pk).exists()  # never got its data
    snapshot = snapshots.create_snapshot(ctx, {"volume_id": str(volume.pk)})
    answer(volume, msg.EVENT_VOLUME_ACTION_FAILED, action=msg.VOLUME_ACTION_CREATE_SNAPSHOT,
           snapshot_id=str(snapshot.pk), message="qmp error")
    snapshot.refresh_from_db()
    assert (snapshot.status, snapshot.status_reason) == (statuses.ERROR, "qmp error")
    volumes.delete_volume(ctx, volume.pk, cascade=True)
    answer(volume, msg.EVENT_VOLUME_ACTION_FAILED, action=msg.VOLUME_ACTION_DELETE,
           message="busy")
    volume.refresh_from_db()
    snapshot.refresh_from_db()
    assert (volume.status, snapshot.status) == (statuses.ERROR_DELETING, statuses.ERROR_DELETING)
    volumes.delete_volume(ctx, volume.pk, cascade=True)  # error_deleting may be deleted again
    answer(volume, msg.EVENT_VOLUME_DELETED)
    assert not Volume.objects.filter(pk=volume.pk).exists()
