"""EC2 images through boto3: DescribeImages over Glance's images as the project sees them,
CreateImage as Nova's createImage (with boto3's image_available waiter while the host uploads),
DeregisterImage as Glance's delete, DescribeImageAttribute."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError, WaiterError

from cloud.images.models import Image, ImageMember
from cloud.volumes.models import Volume, VolumeSnapshot
from compute_agent import messages as msg
from tests.factories import make_server
from tests.unit.images.corpus import qcow2

pytestmark = pytest.mark.django_db


def code_of(excinfo) -> str:
    return excinfo.value.response["Error"]["Code"]


def ami(image) -> str:
    from cloud.ids import ec2_id

    return ec2_id("ami", image.pk)


def make_image(owner, name, visibility="private", **fields) -> Image:
    values = {"status": "active", "disk_format": "qcow2", "container_format": "bare", "size": 1}
    values.update(fields)
    return Image.objects.create(name=name, owner=owner.project if owner else None,
                                visibility=visibility, **values)


@pytest.fixture
def world(member, other):
    return {
        "mine": make_image(member, "mine", properties={"architecture": "aarch64",
                                                     "description": "my image"}),
        "public": make_image(other, "public", "public"),
        "theirs": make_image(other, "theirs"),
        "offered": make_image(other, "offered", "shared"),
        "accepted": make_image(other, "accepted", "shared"),
        "hidden": make_image(member, "hidden", os_hidden=True),
        "disabled": make_image(member, "disabled", status="deactivated"),
    }


def names(answer) -> set[str]:
    return {i["Name"] for i in answer["Images"]}


def test_a_project_sees_the_images_glances_list_shows_it(ec2_as, member, world):
    ImageMember.objects.create(image=world["offered"], project=member.project, status="pending")
    ImageMember.objects.create(image=world["accepted"], project=member.project, status="accepted")
    ec2 = ec2_as(member)
    assert names(ec2.describe_images()) == {"mine", "public", "accepted"}
    assert names(ec2.describe_images(IncludeDisabled=True)) == {"mine", "public", "accepted",
                                                                "disabled"}
    assert names(ec2.describe_images(Owners=["self"])) == {"mine"}
    assert names(ec2.describe_images(ExecutableUsers=["all"])) == {"public"}
    assert names(ec2.describe_images(ExecutableUsers=["self"])) == {"mine", "accepted"}
    # by id: what GET /v2/images/{id} shows, a pending share and a hidden image too
    by_id = ec2.describe_images(ImageIds=[ami(world["offered"]), ami(world["hidden"])])
    assert names(by_id) == {"offered", "hidden"}
    with pytest.raises(ClientError) as refused:
        ec2.describe_images(ImageIds=[ami(world["mine"]), ami(world["theirs"])])
    assert code_of(refused) == "InvalidAMIID.NotFound"
    assert ami(world["theirs"]) in refused.value.response["Error"]["Message"]


def test_an_image_in_ec2s_shape(ec2_as, member, world):
    ec2 = ec2_as(member)
    ec2.create_tags(Resources=[ami(world["mine"])], Tags=[{"Key": "Name", "Value": "m"}])
    (image,) = ec2.describe_images(ImageIds=[ami(world["mine"])])["Images"]
    assert image["ImageId"] == ami(world["mine"])
    assert image["State"] == "available" and image["Public"] is False
    assert image["OwnerId"] == member.project.id
    assert image["Architecture"] == "arm64" and image["Description"] == "my image"
    assert (image["ImageType"], image["RootDeviceType"], image["VirtualizationType"]) == (
        "machine", "instance-store", "hvm")
    assert image["RootDeviceName"] == "/dev/vda" and image["BlockDeviceMappings"] == []
    assert image["CreationDate"].endswith("Z") and image["ImageLocation"].endswith("/mine")
    assert image["Tags"] == [{"Key": "Name", "Value": "m"}]
    (public,) = ec2.describe_images(ImageIds=[ami(world["public"])])["Images"]
    assert public["Public"] is True and public["OwnerId"] != member.project.id


def test_filters(ec2_as, member, world):
    ec2 = ec2_as(member)
    ec2.create_tags(Resources=[ami(world["mine"])], Tags=[{"Key": "os", "Value": "cirros"}])

    def by(name, *values):
        return names(ec2.describe_images(Filters=[{"Name": name, "Values": list(values)}]))

    assert by("is-public", "true") == {"public"}
    assert by("owner-id", member.project.id) == {"mine"}
    assert by("name", "m*") == {"mine"}
    assert by("architecture", "arm64") == {"mine"}
    assert by("state", "available") == {"mine", "public"}
    assert by("image-id", ami(world["public"])) == {"public"}
    assert by("tag:os", "cirros") == {"mine"}
    assert by("root-device-type", "ebs") == set()
    assert by("image-type", "machine") == {"mine", "public"}
    assert by("owner-alias", "amazon") == set()
    with pytest.raises(ClientError) as refused:
        by("colour", "blue")
    assert code_of(refused) == "InvalidParameterValue"


def test_a_volume_backed_snapshot_is_an_ebs_image(ec2_as, member):
    volume = Volume.objects.create(project=member.project, size=2, status="available")
    snapshot = VolumeSnapshot.objects.create(project=member.project, volume=volume, size=2,
                                             status="available")
    bdm = [{"source_type": "snapshot", "destination_type": "volume", "boot_index": 0,
            "snapshot_id": str(snapshot.pk), "device_name": "/dev/vda", "volume_size": 2,
            "delete_on_termination": True}]
    image = make_image(member, "vol-backed", size=0,
                       properties={"block_device_mapping": json.dumps(bdm), "bdm_v2": "True",
                                   "root_device_name": "/dev/vda"})
    (described,) = ec2_as(member).describe_images(ImageIds=[ami(image)])["Images"]
    assert described["RootDeviceType"] == "ebs"
    from cloud.ids import ec2_id

    assert described["BlockDeviceMappings"] == [{
        "DeviceName": "/dev/vda",
        "Ebs": {"SnapshotId": ec2_id("snap", snapshot.pk), "VolumeSize": 2,
                "DeleteOnTermination": True, "VolumeType": "standard", "Encrypted": False}}]


def test_describe_images_pages(ec2_as, member):
    for n in range(7):
        make_image(member, f"img{n}")
    pages = ec2_as(member).get_paginator("describe_images").paginate(
        Owners=["self"], PaginationConfig={"PageSize": 5})
    assert [len(p["Images"]) for p in pages] == [5, 2]


def _upload_once(member, image_id):
    """An after-call hook that uploads the image's data (as the host does after a snapshot) the
    first time the waiter has looked, so the waiter sees pending, then available."""
    from django.test import Client

    done = []

    def upload(**_):
        if done:
            return
        done.append(1)
        response = Client().put(f"/image/v2/images/{image_id}/file", data=qcow2(),
                                content_type="application/octet-stream", **member.headers())
        assert response.status_code == 204, response.content

    return upload


def test_create_image_snapshots_the_server_and_the_waiter_sees_it_available(
        ec2_as, api_as, member, sent):
    server = make_server(member)
    ec2 = ec2_as(member)
    from cloud.ids import ec2_id

    made = ec2.create_image(InstanceId=ec2_id("i", server.uuid), Name="web backup",
                            Description="nightly", NoReboot=True, TagSpecifications=[
                                {"ResourceType": "image", "Tags": [{"Key": "k", "Value": "v"}]},
                                {"ResourceType": "snapshot",
                                 "Tags": [{"Key": "ignored", "Value": "x"}]}])
    image = Image.objects.get(name="web backup")
    assert made["ImageId"] == ami(image)
    assert [name for name, *_ in sent] == [msg.TASK_SNAPSHOT]  # Nova's createImage ran
    assert image.properties["instance_uuid"] == str(server.uuid)
    shown = api_as(member).get(f"/image/v2/images/{image.pk}").json()
    assert shown["description"] == "nightly" and shown["ec2_tag:k"] == "v"
    (described,) = ec2.describe_images(ImageIds=[made["ImageId"]])["Images"]
    assert described["State"] == "pending" and described["Tags"] == [{"Key": "k", "Value": "v"}]
    assert described["SourceInstanceId"] == ec2_id("i", server.uuid)

    ec2.meta.events.register("after-call.ec2.DescribeImages", _upload_once(member, image.pk))
    ec2.get_waiter("image_available").wait(ImageIds=[made["ImageId"]],
                                           WaiterConfig={"Delay": 1, "MaxAttempts": 3})
    assert ec2.describe_images(ImageIds=[made["ImageId"]])["Images"][0]["State"] == "available"


def test_the_waiter_stops_on_a_failed_image(ec2_as, member):
    image = make_image(member, "broken", status="killed")
    with pytest.raises(WaiterError) as failed:
        ec2_as(member).get_waiter("image_available").wait(
            ImageIds=[ami(image)], WaiterConfig={"Delay": 1, "MaxAttempts": 2})
    assert "terminal failure" in str(failed.value)  # at once, not after its attempts
    assert failed.value.last_response["Images"][0]["State"] == "failed"


def test_create_image_refusals(ec2_as, member, other, reader, sent):
    from cloud.ids import ec2_id

    mine = ec2_id("i", make_server(member).uuid)
    theirs = ec2_id("i", make_server(other, name="x").uuid)
    ec2 = ec2_as(member)
    cases = [
        ({"InstanceId": theirs, "Name": "good"}, "InvalidInstanceID.NotFound"),
        ({"InstanceId": mine, "Name": "a|b"}, "InvalidAMIName.Malformed"),
        ({"InstanceId": mine, "Name": "bad*name"}, "InvalidAMIName.Malformed"),
        ({"InstanceId": mine, "Name": "good", "TagSpecifications": [
            {"ResourceType": "image", "Tags": [{"Key": "aws:x", "Value": "1"}]}]},
         "InvalidParameterValue"),
    ]
    for kwargs, code in cases:
        with pytest.raises(ClientError) as refused:
            ec2.create_image(**kwargs)
        assert code_of(refused) == code, kwargs
    with pytest.raises(ClientError) as refused:
        ec2.create_image(InstanceId=mine, Name="dry", DryRun=True)
    assert code_of(refused) == "DryRunOperation"
    assert sent == [] and not Image.objects.exists()
    with pytest.raises(ClientError) as refused:
        ec2_as(reader).create_image(InstanceId=mine, Name="good")
    assert code_of(refused) == "UnauthorizedOperation"

    ec2.create_image(InstanceId=mine, Name="good")
    with pytest.raises(ClientError) as refused:  # the server is still being snapshotted
        ec2.create_image(InstanceId=mine, Name="good2")
    assert code_of(refused) == "IncorrectInstanceState"
    with pytest.raises(ClientError) as refused:  # (a description: not a replay of the first)
        ec2.create_image(InstanceId=mine, Name="good", Description="again")
    assert code_of(refused) == "InvalidAMIName.Duplicate"


def test_deregister_image_deletes_it_from_glance(ec2_as, api_as, member, other, world):
    ec2 = ec2_as(member)
    assert ec2.deregister_image(ImageId=ami(world["mine"]))["ResponseMetadata"][
        "HTTPStatusCode"] == 200
    assert api_as(member).get(f"/image/v2/images/{world['mine'].pk}").status_code == 404
    with pytest.raises(ClientError) as refused:
        ec2.describe_images(ImageIds=[ami(world["mine"])])
    assert code_of(refused) == "InvalidAMIID.NotFound"
    with pytest.raises(ClientError) as refused:  # another project's private image: not there
        ec2.deregister_image(ImageId=ami(world["theirs"]))
    assert code_of(refused) == "InvalidAMIID.NotFound"
    with pytest.raises(ClientError) as refused:  # a public one of another project: not ours
        ec2.deregister_image(ImageId=ami(world["public"]))
    assert code_of(refused) == "UnauthorizedOperation"
    assert Image.objects.filter(pk=world["public"].pk).exists()


def test_describe_image_attribute(ec2_as, member, other, world):
    ImageMember.objects.create(image=world["offered"], project=member.project, status="pending")
    ec2 = ec2_as(member)
    mine = ami(world["mine"])
    assert ec2.describe_image_attribute(ImageId=mine, Attribute="description")[
        "Description"] == {"Value": "my image"}
    assert ec2.describe_image_attribute(ImageId=mine, Attribute="launchPermission")[
        "LaunchPermissions"] == []
    offered = ec2_as(other).describe_image_attribute(ImageId=ami(world["offered"]),
                                                     Attribute="launchPermission")
    assert offered["LaunchPermissions"] == [{"UserId": member.project.id}]
    with pytest.raises(ClientError) as refused:
        ec2.describe_image_attribute(ImageId=ami(world["offered"]), Attribute="launchPermission")
    assert code_of(refused) == "AuthFailure"
    with pytest.raises(ClientError) as refused:
        ec2.describe_image_attribute(ImageId=mine, Attribute="colour")
    assert code_of(refused) == "InvalidParameterValue"


def test_create_image_of_a_volume_backed_server_tags_its_snapshots(ec2_as, api_as, member, sent):
    from cloud.ids import ec2_id
    from tests.unit.compute.test_volume_backed_snapshot import _server

    server, _root, _data = _server(member)
    ec2 = ec2_as(member)
    made = ec2.create_image(InstanceId=ec2_id("i", server.uuid), Name="vol backed",
                            TagSpecifications=[{"ResourceType": "snapshot",
                                                "Tags": [{"Key": "of", "Value": "web"}]}])
    (image,) = ec2.describe_images(ImageIds=[made["ImageId"]])["Images"]
    assert image["State"] == "available" and image["RootDeviceType"] == "ebs"
    assert [m["DeviceName"] for m in image["BlockDeviceMappings"]] == ["/dev/vda", "/dev/vdb"]
    snapshots = VolumeSnapshot.objects.all()
    assert {ec2_id("snap", s.pk) for s in snapshots} == {
        m["Ebs"]["SnapshotId"] for m in image["BlockDeviceMappings"]}
    for snapshot in snapshots:  # Cinder shows the tags as the snapshot's metadata
        shown = api_as(member).get(
            f"/volume/v3/{member.project.id}/snapshots/{snapshot.pk}").json()["snapshot"]
        assert shown["metadata"] == {"of": "web"}
    tagged = ec2.describe_tags(Filters=[{"Name": "resource-type", "Values": ["snapshot"]}])
    assert len(tagged["Tags"]) == 2


def test_modify_image_attribute_shares_through_glance_members(ec2_as, api_as, member, other,
                                                              admin, world):
    ec2 = ec2_as(member)
    mine = ami(world["mine"])
    ec2.modify_image_attribute(ImageId=mine, Description={"Value": "renamed"})
    assert api_as(member).get(f"/image/v2/images/{world['mine'].pk}").json()[
        "description"] == "renamed"
    with pytest.raises(ClientError) as refused:  # not yet permitted: not there for them
        ec2_as(other).describe_images(ImageIds=[mine])
    assert code_of(refused) == "InvalidAMIID.NotFound"

    ec2.modify_image_attribute(ImageId=mine, LaunchPermission={
        "Add": [{"UserId": other.project.id}]})
    members = api_as(member).get(f"/image/v2/images/{world['mine'].pk}/members").json()
    assert [m["member_id"] for m in members["members"]] == [other.project.id]
    assert names(ec2_as(other).describe_images(ImageIds=[mine])) == {"mine"}
    assert ec2.describe_image_attribute(ImageId=mine, Attribute="launchPermission")[
        "LaunchPermissions"] == [{"UserId": other.project.id}]

    ec2.modify_image_attribute(ImageId=mine, Attribute="launchPermission",
                               OperationType="remove", UserIds=[other.project.id])
    with pytest.raises(ClientError) as refused:
        ec2_as(other).describe_images(ImageIds=[mine])
    assert code_of(refused) == "InvalidAMIID.NotFound"

    with pytest.raises(ClientError) as refused:  # making it public is an operator's act
        ec2.modify_image_attribute(ImageId=mine, LaunchPermission={"Add": [{"Group": "all"}]})
    assert code_of(refused) == "UnauthorizedOperation"
    ec2_as(admin).modify_image_attribute(ImageId=mine,
                                         LaunchPermission={"Add": [{"Group": "all"}]})
    assert ec2_as(other).describe_images(ImageIds=[mine])["Images"][0]["Public"] is True
    with pytest.raises(ClientError) as refused:  # not the owner's: Glance refuses the change
        ec2_as(other).modify_image_attribute(ImageId=mine, Description={"Value": "mine now"})
    assert code_of(refused) == "UnauthorizedOperation"
    with pytest.raises(ClientError) as refused:
        ec2.modify_image_attribute(ImageId=mine, Attribute="kernel", Value="aki-1")
    assert code_of(refused) == "InvalidParameterValue"


def test_reset_image_attribute_takes_every_launch_permission_back(ec2_as, api_as, member, other,
                                                                 world):
    ec2 = ec2_as(member)
    mine = ami(world["mine"])
    ec2.modify_image_attribute(ImageId=mine, LaunchPermission={
        "Add": [{"UserId": other.project.id}]})
    ec2.reset_image_attribute(ImageId=mine, Attribute="launchPermission")
    shown = api_as(member).get(f"/image/v2/images/{world['mine'].pk}").json()
    assert shown["visibility"] == "private"
    assert not ImageMember.objects.filter(image=world["mine"]).exists()
    with pytest.raises(ClientError) as refused:
        ec2_as(other).describe_images(ImageIds=[mine])
    assert code_of(refused) == "InvalidAMIID.NotFound"
    with pytest.raises(ClientError) as refused:  # a public image of another project
        ec2.reset_image_attribute(ImageId=ami(world["public"]), Attribute="launchPermission")
    assert code_of(refused) == "UnauthorizedOperation"
