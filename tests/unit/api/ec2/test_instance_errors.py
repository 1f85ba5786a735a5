"""EC2's refusals of the instance actions, each by the code clients branch on: bad input, another
project's instance, a reader's change, the quota, a state that forbids the change. A refusal
makes nothing and sends the hosts nothing."""

from __future__ import annotations

import pytest

from cloud.compute import quotas
from cloud.compute.models import Instance
from cloud.ids import ec2_id
from cloud.network.models import SecurityGroup
from tests.factories import make_server

pytestmark = pytest.mark.django_db

UNKNOWN_I = "i-0123456789abcdef0"


@pytest.fixture
def world(member, other, tiny, image, nets):
    """The member's running server, stopped server and image; the other project's server,
    private image and subnet."""
    from cloud.images.models import Image

    theirs = Image.objects.create(name="theirs", status="active", disk_format="qcow2",
                                  container_format="bare", owner=other.project,
                                  visibility="private", size=1)
    return {
        "mine": ec2_id("i", make_server(member, "mine").uuid),
        "stopped": ec2_id("i", make_server(member, "off", vm_state="stopped",
                                           power_state="shutdown").uuid),
        "building": ec2_id("i", make_server(member, "new", vm_state="building",
                                            task_state="scheduling", host=None).uuid),
        "theirs": ec2_id("i", make_server(other, "theirs").uuid),
        "ami": ec2_id("ami", image.id),
        "their_ami": ec2_id("ami", theirs.id),
        "their_subnet": ec2_id("subnet", nets["beta"].subnets.get().pk),
    }


def _launch(world: dict, **kw) -> dict:
    return {"ImageId": world["ami"], "InstanceType": "m1.tiny", "MinCount": 1, "MaxCount": 1,
            **kw}


# (persona, operation, its arguments from the world, the code EC2 answers)
CASES = [
    ("reader", "run_instances", lambda w: _launch(w), "UnauthorizedOperation"),
    ("reader", "stop_instances", lambda w: {"InstanceIds": [w["mine"]]},
     "UnauthorizedOperation"),
    ("reader", "terminate_instances", lambda w: {"InstanceIds": [w["mine"]]},
     "UnauthorizedOperation"),
    ("other", "describe_instances", lambda w: {"InstanceIds": [w["mine"]]},
     "InvalidInstanceID.NotFound"),
    ("other", "start_instances", lambda w: {"InstanceIds": [w["stopped"]]},
     "InvalidInstanceID.NotFound"),
    ("other", "stop_instances", lambda w: {"InstanceIds": [w["mine"]]},
     "InvalidInstanceID.NotFound"),
    ("other", "reboot_instances", lambda w: {"InstanceIds": [w["mine"]]},
     "InvalidInstanceID.NotFound"),
    ("other", "terminate_instances", lambda w: {"InstanceIds": [w["mine"]]},
     "InvalidInstanceID.NotFound"),
    ("other", "get_console_output", lambda w: {"InstanceId": w["mine"]},
     "InvalidInstanceID.NotFound"),
    ("other", "describe_instance_attribute",
     lambda w: {"InstanceId": w["mine"], "Attribute": "instanceType"},
     "InvalidInstanceID.NotFound"),
    ("member", "describe_instances", lambda w: {"InstanceIds": [w["mine"], w["theirs"]]},
     "InvalidInstanceID.NotFound"),
    ("member", "terminate_instances", lambda w: {"InstanceIds": [w["mine"], w["theirs"]]},
     "InvalidInstanceID.NotFound"),
    ("member", "stop_instances", lambda w: {"InstanceIds": [UNKNOWN_I]},
     "InvalidInstanceID.NotFound"),
    ("member", "describe_instances", lambda w: {"InstanceIds": ["i-xyz"]},
     "InvalidInstanceID.Malformed"),
    ("member", "stop_instances", lambda w: {"InstanceIds": ["instance-1"]},
     "InvalidInstanceID.Malformed"),
    ("member", "terminate_instances", lambda w: {"InstanceIds": [w["mine"], "i-123"]},
     "InvalidInstanceID.Malformed"),
    ("member", "run_instances", lambda w: _launch(w, ImageId="ami-0123456789abcdef0"),
     "InvalidAMIID.NotFound"),
    ("member", "run_instances", lambda w: _launch(w, ImageId=w["their_ami"]),
     "InvalidAMIID.NotFound"),
    ("member", "run_instances", lambda w: _launch(w, InstanceType="x9.huge"),
     "InvalidParameterValue"),
    ("member", "run_instances", lambda w: _launch(w, KeyName="nokey"),
     "InvalidKeyPair.NotFound"),
    ("member", "run_instances", lambda w: _launch(w, SubnetId=w["their_subnet"]),
     "InvalidSubnetID.NotFound"),
    ("member", "run_instances", lambda w: _launch(w, SecurityGroupIds=["sg-0123456789abcdef0"]),
     "InvalidGroup.NotFound"),
    ("member", "run_instances", lambda w: _launch(w, SecurityGroups=["nope"]),
     "InvalidGroup.NotFound"),
    ("member", "run_instances", lambda w: _launch(w, MinCount=3, MaxCount=2),
     "InvalidParameterValue"),
    ("member", "run_instances", lambda w: _launch(w, Placement={"AvailabilityZone": "mars"}),
     "InvalidParameterValue"),
    ("member", "run_instances", lambda w: _launch(w, BlockDeviceMappings=[
        {"DeviceName": "/dev/sdb", "VirtualName": "ephemeral0"}]), "InvalidParameterValue"),
    ("member", "run_instances", lambda w: _launch(w, BlockDeviceMappings=[
        {"DeviceName": "/dev/sdb", "Ebs": {"DeleteOnTermination": True}}]), "MissingParameter"),
    ("member", "run_instances", lambda w: _launch(w, BlockDeviceMappings=[
        {"DeviceName": "/dev/sdb", "Ebs": {"SnapshotId": "snap-0123456789abcdef0"}}]),
     "InvalidSnapshot.NotFound"),
    ("member", "run_instances", lambda w: _launch(w, TagSpecifications=[
        {"ResourceType": "instance", "Tags": [{"Key": "aws:x", "Value": "1"}]}]),
     "InvalidParameterValue"),
    ("member", "run_instances", lambda w: _launch(w, DryRun=True), "DryRunOperation"),
    ("member", "stop_instances", lambda w: {"InstanceIds": [w["mine"]], "DryRun": True},
     "DryRunOperation"),
    ("member", "describe_instances", lambda w: {"InstanceIds": [w["mine"]], "MaxResults": 5},
     "InvalidParameterCombination"),
    ("member", "describe_instances", lambda w: {"MaxResults": 3}, "InvalidParameterValue"),
    ("member", "describe_instances", lambda w: {"NextToken": "garbage!"}, "InvalidNextToken"),
    ("member", "describe_instances", lambda w: {"Filters": [{"Name": "colour", "Values": ["x"]}]},
     "InvalidParameterValue"),
    ("member", "start_instances", lambda w: {"InstanceIds": [w["building"]]},
     "IncorrectInstanceState"),
    ("member", "stop_instances", lambda w: {"InstanceIds": [w["building"]]},
     "IncorrectInstanceState"),
    ("member", "reboot_instances", lambda w: {"InstanceIds": [w["stopped"]]},
     "IncorrectInstanceState"),
    # one that cannot be stopped: none of them is (EC2 changes none when one cannot change)
    ("member", "stop_instances", lambda w: {"InstanceIds": [w["mine"], w["building"]]},
     "IncorrectInstanceState"),
    ("member", "modify_instance_attribute",
     lambda w: {"InstanceId": w["mine"], "InstanceType": {"Value": "m1.tiny"}},
     "IncorrectInstanceState"),
    ("member", "describe_instance_attribute",
     lambda w: {"InstanceId": w["mine"], "Attribute": "colour"}, "InvalidParameterValue"),
]


@pytest.mark.parametrize("persona, operation, arguments, code", CASES,
                         ids=[f"{c[1]}-{c[3]}-{i}" for i, c in enumerate(CASES)])
def test_a_refused_instance_request_answers_ec2s_code_and_changes_nothing(
        request, ec2_as, world, sent, persona, operation, arguments, code):
    client = ec2_as(request.getfixturevalue(persona), parameter_validation=False)
    before = sorted((str(i.uuid), i.vm_state, i.task_state, i.deleted)
                    for i in Instance.objects.all())
    with pytest.raises(client.exceptions.ClientError) as refused:
        getattr(client, operation)(**arguments(world))
    error = refused.value.response["Error"]
    assert error["Code"] == code, error
    assert error["Message"]
    assert sorted((str(i.uuid), i.vm_state, i.task_state, i.deleted)
                  for i in Instance.objects.all()) == before
    assert sent == []


@pytest.mark.parametrize("limits", [{"instances": 0}, {"cores": 0}, {"ram": 64}])
def test_a_launch_over_the_quota_is_instance_limit_exceeded(ec2_as, member, tiny, image, sent,
                                                            limits):
    quotas.update_limits(member.project.id, limits)
    client = ec2_as(member)
    with pytest.raises(client.exceptions.ClientError) as refused:
        client.run_instances(ImageId=ec2_id("ami", image.id), InstanceType="m1.tiny",
                             MinCount=1, MaxCount=1)
    assert refused.value.response["Error"]["Code"] == "InstanceLimitExceeded"
    assert "Quota exceeded" in refused.value.response["Error"]["Message"]
    assert not Instance.objects.exists() and sent == []


def test_a_protected_instance_is_not_terminated(ec2_as, member, sent):
    server = make_server(member)
    instance_id = ec2_id("i", server.uuid)
    client = ec2_as(member)
    client.modify_instance_attribute(InstanceId=instance_id,
                                     DisableApiTermination={"Value": True})
    assert client.describe_instance_attribute(
        InstanceId=instance_id, Attribute="disableApiTermination")[
        "DisableApiTermination"] == {"Value": True}
    with pytest.raises(client.exceptions.ClientError) as refused:
        client.terminate_instances(InstanceIds=[instance_id])
    assert refused.value.response["Error"]["Code"] == "OperationNotPermitted"
    server.refresh_from_db()
    assert not server.deleted and server.task_state is None and sent == []
    client.modify_instance_attribute(InstanceId=instance_id,
                                     DisableApiTermination={"Value": False})
    # (a second credential: the same signed change twice in a second is refused as a replay)
    (change,) = ec2_as(member).terminate_instances(InstanceIds=[instance_id])[
        "TerminatingInstances"]
    assert change["CurrentState"]["Name"] == "shutting-down"


def test_a_readers_describe_is_allowed(ec2_as, reader, member, sent):
    server = make_server(member)
    found = ec2_as(reader).describe_instances()["Reservations"]
    assert [r["Instances"][0]["InstanceId"] for r in found] == [ec2_id("i", server.uuid)]


def test_a_security_group_of_another_project_is_not_found(ec2_as, member, other, tiny, image,
                                                          sent):
    theirs = SecurityGroup.objects.create(name="web", project_id=other.project.id)
    client = ec2_as(member)
    with pytest.raises(client.exceptions.ClientError) as refused:
        client.run_instances(ImageId=ec2_id("ami", image.id), InstanceType="m1.tiny",
                             MinCount=1, MaxCount=1, SecurityGroupIds=[ec2_id("sg", theirs.pk)])
    assert refused.value.response["Error"]["Code"] == "InvalidGroup.NotFound"
    assert not Instance.objects.exists()


def test_a_key_pair_over_its_quota_is_resource_limit_exceeded(ec2_as, member, sent):
    # Only the instance quotas are InstanceLimitExceeded; the others are named by the quota the
    # refusal says it is over, not guessed from its words.
    quotas.update_limits(member.project.id, {"key_pairs": 0})
    client = ec2_as(member)
    with pytest.raises(client.exceptions.ClientError) as refused:
        client.create_key_pair(KeyName="one-too-many")
    assert refused.value.response["Error"]["Code"] == "ResourceLimitExceeded"
    assert "key_pairs" in refused.value.response["Error"]["Message"]


def test_a_launch_with_more_tags_than_the_metadata_quota_is_tag_limit_exceeded(
        ec2_as, member, tiny, image, sent):
    quotas.update_limits(member.project.id, {"metadata_items": 2})
    client = ec2_as(member)
    with pytest.raises(client.exceptions.ClientError) as refused:
        client.run_instances(
            ImageId=ec2_id("ami", image.id), InstanceType="m1.tiny", MinCount=1, MaxCount=1,
            TagSpecifications=[{"ResourceType": "instance", "Tags": [
                {"Key": f"k{n}", "Value": "v"} for n in range(3)]}])
    assert refused.value.response["Error"]["Code"] == "TagLimitExceeded"
    assert not Instance.objects.exists() and sent == []
