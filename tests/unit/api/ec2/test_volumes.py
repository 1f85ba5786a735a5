"""Volumes and snapshots through boto3, driven by the volume host's and compute host's answers as
the conductor applies them (no volume host runs): create and boto3's volume_available waiter,
attach and volume_in_use, detach, delete and volume_deleted, snapshots and snapshot_completed, a
volume from a snapshot, the states Cinder's statuses show as, and EC2's errors for bad input,
volumes in use and another project's ids. The Block Storage API shows the same volumes."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from cloud.conductor.instance_events import apply_instance_event
from cloud.ids import ec2_id
from cloud.volumes.models import Volume, VolumeSnapshot
from compute_agent import messages as msg
from tests.factories import make_server
from tests.unit.volumes.conftest import answer, created, report

pytestmark = pytest.mark.django_db

FAST = {"Delay": 0, "MaxAttempts": 5}


def code_of(excinfo) -> str:
    return excinfo.value.response["Error"]["Code"]


@pytest.fixture
def host(db):
    report()  # a volume host with room, as its last report said


def _row(volume_id: str) -> Volume:
    return next(v for v in Volume.objects.all() if ec2_id("vol", v.pk) == volume_id)


def _after_polls(client, operation: str, polls: int, then) -> list[int]:
    """Run `then` once the waiter has polled `polls` times: the waiter must poll until it sees
    the change, not find it at once."""
    seen = [0]

    def hook(**_: object) -> None:
        seen[0] += 1
        if seen[0] == polls:
            then()
    client.meta.events.register(f"after-call.ec2.{operation}", hook)
    return seen


def _attached(server, volume: Volume, event: str = msg.EVENT_VOLUME_ATTACHED) -> None:
    apply_instance_event(msg.InstanceEvent(
        request_id="req-test", instance_uuid=str(server.uuid), host=server.host, event=event,
        power_state="running", volume_id=str(volume.pk)))


def test_create_wait_for_available_and_delete(ec2_as, member, host, api_as):
    ec2 = ec2_as(member)
    made = ec2.create_volume(Size=2, AvailabilityZone="nova", VolumeType="gp3",
                             TagSpecifications=[{"ResourceType": "volume",
                                                 "Tags": [{"Key": "Name", "Value": "data"}]}])
    volume_id = made["VolumeId"]
    assert volume_id.startswith("vol-")
    assert (made["State"], made["Size"], made["AvailabilityZone"], made["VolumeType"],
            made["Encrypted"]) == ("creating", 2, "nova", "__DEFAULT__", False)
    assert made["Tags"] == [{"Key": "Name", "Value": "data"}]
    row = _row(volume_id)

    polls = _after_polls(ec2, "DescribeVolumes", 2, lambda: created(row, size_gb=2))
    ec2.get_waiter("volume_available").wait(VolumeIds=[volume_id], WaiterConfig=FAST)
    assert polls[0] == 3  # creating, creating, available
    [shown] = ec2.describe_volumes(Filters=[{"Name": "tag:Name", "Values": ["data"]},
                                            {"Name": "status", "Values": ["available"]}])[
        "Volumes"]
    assert (shown["VolumeId"], shown["Attachments"]) == (volume_id, [])
    cinder = api_as(member).get(f"/volume/v3/{member.project.id}/volumes/{row.pk}").json()[
        "volume"]
    assert (cinder["status"], cinder["size"], cinder["metadata"]) == (
        "available", 2, {"Name": "data"})

    assert ec2.delete_volume(VolumeId=volume_id)["ResponseMetadata"]["HTTPStatusCode"] == 200
    [deleting] = ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"]
    assert deleting["State"] == "deleting"
    _after_polls(ec2, "DescribeVolumes", 1,
                 lambda: answer(row, msg.EVENT_VOLUME_DELETED))
    ec2.get_waiter("volume_deleted").wait(VolumeIds=[volume_id], WaiterConfig=FAST)
    with pytest.raises(ClientError) as gone:
        ec2.describe_volumes(VolumeIds=[volume_id])
    assert code_of(gone) == "InvalidVolume.NotFound"


def test_attach_wait_in_use_detach(ec2_as, member, host, sent):
    ec2 = ec2_as(member)
    server = make_server(member)
    instance_id = ec2_id("i", server.uuid)
    volume_id = ec2.create_volume(Size=1, AvailabilityZone="nova")["VolumeId"]
    row = _row(volume_id)
    created(row)
    attached = ec2.attach_volume(VolumeId=volume_id, InstanceId=instance_id, Device="/dev/sdf")
    assert (attached["State"], attached["Device"], attached["InstanceId"]) == (
        "attaching", "/dev/vdb", instance_id)
    assert sent[-1].name == msg.TASK_ATTACH_VOLUME
    [shown] = ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"]
    assert shown["State"] == "in-use"
    assert shown["Attachments"][0]["State"] == "attaching"

    polls = _after_polls(ec2, "DescribeVolumes", 1, lambda: _attached(server, row))
    ec2.get_waiter("volume_in_use").wait(VolumeIds=[volume_id], Filters=[
        {"Name": "attachment.status", "Values": ["attached"]}], WaiterConfig=FAST)
    assert polls[0] == 2
    [shown] = ec2.describe_volumes(Filters=[
        {"Name": "attachment.instance-id", "Values": [instance_id]}])["Volumes"]
    [attachment] = shown["Attachments"]
    assert (attachment["InstanceId"], attachment["Device"], attachment["State"],
            attachment["DeleteOnTermination"]) == (instance_id, "/dev/vdb", "attached", False)

    with pytest.raises(ClientError) as in_use:
        ec2.delete_volume(VolumeId=volume_id)
    assert code_of(in_use) == "VolumeInUse"
    other_server = make_server(member, name="vm2")
    with pytest.raises(ClientError) as taken:
        ec2.attach_volume(VolumeId=volume_id, InstanceId=ec2_id("i", other_server.uuid),
                          Device="/dev/sdg")
    assert code_of(taken) == "VolumeInUse"
    with pytest.raises(ClientError) as wrong_instance:
        ec2.detach_volume(VolumeId=volume_id, InstanceId=ec2_id("i", other_server.uuid))
    assert code_of(wrong_instance) == "InvalidAttachment.NotFound"

    detached = ec2.detach_volume(VolumeId=volume_id, InstanceId=instance_id)
    assert (detached["State"], detached["InstanceId"]) == ("detaching", instance_id)
    assert sent[-1].name == msg.TASK_DETACH_VOLUME
    _after_polls(ec2, "DescribeVolumes", 1,
                 lambda: _attached(server, row, msg.EVENT_VOLUME_DETACHED))
    ec2.get_waiter("volume_available").wait(VolumeIds=[volume_id], WaiterConfig=FAST)
    [shown] = ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"]
    assert shown["Attachments"] == []
    with pytest.raises(ClientError) as not_attached:
        ec2_as(member).detach_volume(VolumeId=volume_id)
    assert code_of(not_attached) == "IncorrectState"


def test_snapshots_and_a_volume_made_from_one(ec2_as, member, host):
    ec2 = ec2_as(member)
    volume_id = ec2.create_volume(Size=1, AvailabilityZone="nova")["VolumeId"]
    row = _row(volume_id)
    created(row)
    snap = ec2.create_snapshot(VolumeId=volume_id, Description="before upgrade",
                               TagSpecifications=[{"ResourceType": "snapshot", "Tags": [
                                   {"Key": "when", "Value": "nightly"}]}])
    snapshot_id = snap["SnapshotId"]
    assert (snap["State"], snap["VolumeId"], snap["VolumeSize"], snap["Description"]) == (
        "pending", volume_id, 1, "before upgrade")
    snapshot = VolumeSnapshot.objects.get(volume=row)
    _after_polls(ec2, "DescribeSnapshots", 1, lambda: answer(
        row, msg.EVENT_VOLUME_SNAPSHOT_CREATED, snapshot_id=str(snapshot.pk)))
    ec2.get_waiter("snapshot_completed").wait(SnapshotIds=[snapshot_id], WaiterConfig=FAST)
    [shown] = ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
    assert (shown["SnapshotId"], shown["State"], shown["Progress"]) == (
        snapshot_id, "completed", "100%")
    assert shown["Tags"] == [{"Key": "when", "Value": "nightly"}]
    assert ec2.describe_snapshots(OwnerIds=["amazon"])["Snapshots"] == []
    found = ec2.describe_snapshots(Filters=[{"Name": "volume-id", "Values": [volume_id]},
                                            {"Name": "description", "Values": ["before*"]}])
    assert [s["SnapshotId"] for s in found["Snapshots"]] == [snapshot_id]

    copy = ec2.create_volume(SnapshotId=snapshot_id, AvailabilityZone="nova")
    assert (copy["SnapshotId"], copy["Size"], copy["State"]) == (snapshot_id, 1, "creating")
    with pytest.raises(ClientError) as has_snapshots:
        ec2.delete_volume(VolumeId=volume_id)
    assert code_of(has_snapshots) == "IncorrectState"

    ec2.delete_snapshot(SnapshotId=snapshot_id)
    with pytest.raises(ClientError) as gone:
        ec2.describe_snapshots(SnapshotIds=[snapshot_id])
    assert code_of(gone) == "InvalidSnapshot.NotFound"


@pytest.mark.parametrize("kwargs, code", [
    ({"Size": 1, "AvailabilityZone": "nova", "VolumeType": "turbo"}, "InvalidParameterValue"),
    ({"Size": 1, "AvailabilityZone": "nova", "Encrypted": True}, "InvalidParameterValue"),
    ({"Size": 0, "AvailabilityZone": "nova"}, "InvalidParameterValue"),
    ({"AvailabilityZone": "nova"}, "MissingParameter"),
    ({"Size": 1, "AvailabilityZone": "mars"}, "InvalidZone.NotFound"),
    ({"SnapshotId": "snap-00000000000000000", "AvailabilityZone": "nova"},
     "InvalidSnapshot.NotFound"),
])
def test_bad_create_requests(ec2_as, member, host, kwargs, code):
    ec2 = ec2_as(member)
    with pytest.raises(ClientError) as refused:
        ec2.create_volume(**kwargs)
    assert code_of(refused) == code
    assert ec2.describe_volumes()["Volumes"] == []


def test_another_projects_volume_and_instance_are_missing(ec2_as, member, other, reader, host):
    mine = ec2_as(member)
    volume_id = mine.create_volume(Size=1, AvailabilityZone="nova")["VolumeId"]
    created(_row(volume_id))
    server = make_server(member)
    stranger = ec2_as(other)
    theirs = stranger.create_volume(Size=1, AvailabilityZone="nova")["VolumeId"]
    created(_row(theirs))
    assert [v["VolumeId"] for v in stranger.describe_volumes()["Volumes"]] == [theirs]
    for call, code in [
        (lambda: stranger.describe_volumes(VolumeIds=[volume_id]), "InvalidVolume.NotFound"),
        (lambda: stranger.delete_volume(VolumeId=volume_id), "InvalidVolume.NotFound"),
        (lambda: stranger.create_snapshot(VolumeId=volume_id), "InvalidVolume.NotFound"),
        (lambda: stranger.attach_volume(VolumeId=volume_id, Device="/dev/sdf",
                                        InstanceId=ec2_id("i", server.uuid)),
         "InvalidVolume.NotFound"),
        (lambda: stranger.attach_volume(VolumeId=theirs, Device="/dev/sdf",
                                        InstanceId=ec2_id("i", server.uuid)),
         "InvalidInstanceID.NotFound"),
    ]:
        with pytest.raises(ClientError) as refused:
            call()
        assert code_of(refused) == code
    looker = ec2_as(reader)
    assert [v["VolumeId"] for v in looker.describe_volumes()["Volumes"]] == [volume_id]
    for call in (lambda: looker.create_volume(Size=1, AvailabilityZone="nova"),
                 lambda: looker.delete_volume(VolumeId=volume_id),
                 lambda: looker.attach_volume(VolumeId=volume_id, Device="/dev/sdf",
                                              InstanceId=ec2_id("i", server.uuid))):
        with pytest.raises(ClientError) as denied:
            call()
        assert code_of(denied) == "UnauthorizedOperation"


def test_dry_run_checks_and_changes_nothing(ec2_as, member, reader, host):
    ec2 = ec2_as(member)
    with pytest.raises(ClientError) as dry:
        ec2.create_volume(Size=1, AvailabilityZone="nova", DryRun=True)
    assert code_of(dry) == "DryRunOperation"
    assert ec2.describe_volumes()["Volumes"] == []
    volume_id = ec2.create_volume(Size=1, AvailabilityZone="nova")["VolumeId"]
    created(_row(volume_id))
    for call in (lambda: ec2.delete_volume(VolumeId=volume_id, DryRun=True),
                 lambda: ec2.create_snapshot(VolumeId=volume_id, DryRun=True)):
        with pytest.raises(ClientError) as dry:
            call()
        assert code_of(dry) == "DryRunOperation"
    assert [v["State"] for v in ec2.describe_volumes()["Volumes"]] == ["available"]
    assert ec2.describe_snapshots()["Snapshots"] == []
    with pytest.raises(ClientError) as denied:
        ec2_as(reader).create_volume(Size=1, AvailabilityZone="nova", DryRun=True)
    assert code_of(denied) == "UnauthorizedOperation"


def test_describing_more_volumes_costs_no_more_queries(ec2_as, member, host):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    ec2 = ec2_as(member)

    def queries() -> int:
        with CaptureQueriesContext(connection) as seen:
            ec2.describe_volumes()
        return len(seen.captured_queries)

    ec2.create_volume(Size=1, AvailabilityZone="nova")
    few = queries()
    for n in range(3):
        ec2_as(member).create_volume(Size=1, AvailabilityZone="nova", TagSpecifications=[
            {"ResourceType": "volume", "Tags": [{"Key": "n", "Value": str(n)}]}])
    assert queries() == few


@pytest.mark.parametrize("call, code", [
    (lambda ec2: ec2.describe_volumes(VolumeIds=["vol-nothex"]), "InvalidVolumeID.Malformed"),
    (lambda ec2: ec2.delete_volume(VolumeId="volume-1"), "InvalidVolumeID.Malformed"),
    (lambda ec2: ec2.describe_snapshots(SnapshotIds=["snap-123"]),
     "InvalidSnapshotID.Malformed"),
    (lambda ec2: ec2.describe_security_groups(GroupIds=["sg-xyz"]), "InvalidGroupId.Malformed"),
    (lambda ec2: ec2.describe_vpcs(VpcIds=["vpc-1"]), "InvalidVpcID.Malformed"),
    (lambda ec2: ec2.describe_subnets(SubnetIds=["subnet-zz"]), "InvalidSubnetID.Malformed"),
    (lambda ec2: ec2.describe_volumes(VolumeIds=["vol-0123456789abcdef0"]),
     "InvalidVolume.NotFound"),
])
def test_a_malformed_id_is_told_from_a_missing_one(ec2_as, member, call, code):
    with pytest.raises(ClientError) as refused:
        call(ec2_as(member))
    assert code_of(refused) == code


def test_an_admins_account_is_their_project(ec2_as, admin, other, host):
    theirs = ec2_as(other).create_volume(Size=1, AvailabilityZone="nova")["VolumeId"]
    boss = ec2_as(admin)
    assert boss.describe_volumes()["Volumes"] == []
    with pytest.raises(ClientError) as hidden:
        boss.describe_volumes(VolumeIds=[theirs])
    assert code_of(hidden) == "InvalidVolume.NotFound"
    group = ec2_as(other).create_security_group(GroupName="b", Description="b")["GroupId"]
    assert group not in {g["GroupId"] for g in boss.describe_security_groups()["SecurityGroups"]}


def test_boto3s_paginator_walks_every_volume_and_snapshot(ec2_as, member, host):
    made = [ec2_as(member).create_volume(Size=1, AvailabilityZone="nova")["VolumeId"]
            for _ in range(7)]
    for volume_id in made[:6]:
        created(_row(volume_id))
        ec2_as(member).create_snapshot(VolumeId=volume_id)
    ec2 = ec2_as(member)
    pages = list(ec2.get_paginator("describe_volumes").paginate(
        PaginationConfig={"PageSize": 5}))
    assert [len(p["Volumes"]) for p in pages] == [5, 2]
    assert [v["VolumeId"] for p in pages for v in p["Volumes"]] == made
    pages = list(ec2.get_paginator("describe_snapshots").paginate(
        OwnerIds=["self"], PaginationConfig={"PageSize": 5}))
    assert [len(p["Snapshots"]) for p in pages] == [5, 1]


def test_volume_quotas_answer_ec2s_limit_codes(ec2_as, member, admin, host):
    import json

    from django.test import Client

    ec2 = ec2_as(member)
    volume_id = ec2.create_volume(Size=1, AvailabilityZone="nova")["VolumeId"]
    created(_row(volume_id))
    project = member.project.id
    response = Client().put(f"/volume/v3/{project}/os-quota-sets/{project}",
                            json.dumps({"quota_set": {"volumes": 1, "snapshots": 0}}),
                            content_type="application/json", HTTP_X_AUTH_TOKEN=admin.token)
    assert response.status_code == 200, response.content
    with pytest.raises(ClientError) as volumes:
        ec2.create_volume(Size=1, AvailabilityZone="nova")
    assert code_of(volumes) == "VolumeLimitExceeded"
    with pytest.raises(ClientError) as snapshots:
        ec2.create_snapshot(VolumeId=volume_id)
    assert code_of(snapshots) == "SnapshotLimitExceeded"
