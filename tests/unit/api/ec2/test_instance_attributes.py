"""DescribeInstanceAttribute, GetConsoleOutput and DescribeInstanceTypes through boto3."""

from __future__ import annotations

import base64

import pytest

from cloud.compute.models import Flavor, FlavorAccess
from cloud.ids import ec2_id
from tests.factories import make_server

pytestmark = pytest.mark.django_db


def test_instance_attributes_read_the_server(ec2_as, member, tiny, sent):
    user_data = base64.b64encode(b"#!/bin/sh\necho hi\n").decode()
    server = make_server(member, flavor=tiny, user_data=user_data)
    client = ec2_as(member)
    instance_id = ec2_id("i", server.uuid)

    def attribute(name: str) -> dict:
        answer = client.describe_instance_attribute(InstanceId=instance_id, Attribute=name)
        assert answer["InstanceId"] == instance_id
        return answer

    assert attribute("instanceType")["InstanceType"] == {"Value": "m1.tiny"}
    # boto3 hands user data back as the base64 text EC2 sends
    assert base64.b64decode(attribute("userData")["UserData"]["Value"]) == b"#!/bin/sh\necho hi\n"
    assert attribute("disableApiTermination")["DisableApiTermination"] == {"Value": False}
    assert attribute("rootDeviceName")["RootDeviceName"] == {"Value": "/dev/vda"}
    assert attribute("groupSet")["Groups"][0]["GroupName"] == "default"
    assert attribute("blockDeviceMapping")["BlockDeviceMappings"] == []


def test_console_output_is_the_hosts_answer_base64(ec2_as, member, sent, monkeypatch):
    from django.core.cache import cache

    from cloud import rpc
    from cloud.compute.guest_operations import console_key

    asked = []

    def host_answers(name, args, queue, **_):
        asked.append(queue)
        cache.set(console_key(args[0]["request_id"]), {"output": "KUMO GUEST\nlogin: é"}, 60)

    monkeypatch.setattr(rpc.app, "send_task", host_answers)
    server = make_server(member)
    answer = ec2_as(member).get_console_output(InstanceId=ec2_id("i", server.uuid))
    assert asked == ["compute.compute1"]
    assert answer["InstanceId"] == ec2_id("i", server.uuid)
    # boto3 decodes the base64 itself
    assert answer["Output"] == "KUMO GUEST\nlogin: é"
    assert answer["Timestamp"] is not None


def test_instance_types_are_the_flavors_the_project_may_use(ec2_as, member, other, tiny):
    Flavor.objects.create(flavorid="2", name="m1.big", vcpus=4, memory_mb=8192, root_gb=20,
                          ephemeral_gb=10)
    secret = Flavor.objects.create(flavorid="3", name="s1.secret", vcpus=2, memory_mb=1024,
                                   root_gb=0, is_public=False)
    FlavorAccess.objects.create(flavor=secret, project_id=member.project.id)
    client = ec2_as(member)
    types = {t["InstanceType"]: t for t in client.describe_instance_types()["InstanceTypes"]}
    assert sorted(types) == ["m1.big", "m1.tiny", "s1.secret"]
    shown = types["m1.big"]
    assert shown["VCpuInfo"]["DefaultVCpus"] == 4
    assert shown["MemoryInfo"]["SizeInMiB"] == 8192
    assert shown["InstanceStorageSupported"] is True
    assert shown["InstanceStorageInfo"]["TotalSizeInGB"] == 30
    assert shown["ProcessorInfo"]["SupportedArchitectures"] == ["x86_64"]
    assert types["s1.secret"]["InstanceStorageSupported"] is False
    assert "InstanceStorageInfo" not in types["s1.secret"]
    # the other project was given no access to the private one
    theirs = ec2_as(other).describe_instance_types()["InstanceTypes"]
    assert sorted(t["InstanceType"] for t in theirs) == ["m1.big", "m1.tiny"]
    picked = client.describe_instance_types(InstanceTypes=["m1.tiny"])["InstanceTypes"]
    assert [t["InstanceType"] for t in picked] == ["m1.tiny"]
    filtered = client.describe_instance_types(
        Filters=[{"Name": "vcpu-info.default-vcpus", "Values": ["4"]}])["InstanceTypes"]
    assert [t["InstanceType"] for t in filtered] == ["m1.big"]
    with pytest.raises(client.exceptions.ClientError) as refused:
        client.describe_instance_types(InstanceTypes=["s1.secret", "x9.huge"])
    assert refused.value.response["Error"]["Code"] == "InvalidParameterValue"


def test_a_stopped_instance_changes_type_by_a_resize_its_next_start_keeps(ec2_as, member, tiny,
                                                                          sent):
    from cloud.compute.models import Allocation, ComputeNode, Instance
    from cloud.conductor.instance_events import apply_instance_event
    from compute_agent import messages as msg
    from tests.factories import host_up

    Flavor.objects.create(flavorid="2", name="m1.small", vcpus=2, memory_mb=512, root_gb=10)
    node = ComputeNode.objects.create(service=host_up("compute1"), host="compute1",
                                      hypervisor_hostname="compute1", vcpus=4, memory_mb=1024,
                                      local_gb=100)
    server = make_server(member, flavor=tiny, vm_state="stopped", power_state="shutdown")
    Allocation.objects.create(instance=server, node=node, vcpus=1, memory_mb=128, disk_gb=1)
    ComputeNode.objects.filter(pk=node.pk).update(vcpus_used=1, memory_mb_used=128,
                                                  local_gb_used=1)
    instance_id = ec2_id("i", server.uuid)
    client = ec2_as(member)
    client.modify_instance_attribute(InstanceId=instance_id, InstanceType={"Value": "m1.small"})
    assert [s.name for s in sent] == [msg.TASK_RESIZE]
    apply_instance_event(msg.InstanceEvent(request_id="r", instance_uuid=str(server.uuid),
                                           host="compute1", event=msg.EVENT_RESIZED,
                                           power_state=msg.POWER_SHUTDOWN))
    body = client.describe_instances(InstanceIds=[instance_id])["Reservations"][0][
        "Instances"][0]
    assert (body["InstanceType"], body["State"]["Name"]) == ("m1.small", "stopped")
    (change,) = client.start_instances(InstanceIds=[instance_id])["StartingInstances"]
    assert (change["PreviousState"]["Name"], change["CurrentState"]["Name"]) == (
        "stopped", "pending")
    server = Instance.objects.get(pk=server.pk)
    assert server.old_flavor_snapshot is None and server.flavor_snapshot["name"] == "m1.small"
    assert [s.name for s in sent][-1] == msg.TASK_START
    # back to stopped: a type nobody may use is refused before anything is asked of a host,
    # and one no host has room for is EC2's InsufficientInstanceCapacity
    Flavor.objects.create(flavorid="9", name="m1.huge", vcpus=1, memory_mb=8192, root_gb=10)
    for event in (msg.EVENT_STARTED, msg.EVENT_STOPPED):
        if event == msg.EVENT_STOPPED:
            ec2_as(member).stop_instances(InstanceIds=[instance_id])
        apply_instance_event(msg.InstanceEvent(request_id="r", instance_uuid=str(server.uuid),
                                               host="compute1", event=event))
    asked = len(sent)
    for wanted, code in (("x9.huge", "InvalidParameterValue"),
                         ("m1.huge", "InsufficientInstanceCapacity")):
        with pytest.raises(client.exceptions.ClientError) as refused:
            ec2_as(member).modify_instance_attribute(InstanceId=instance_id,
                                                     InstanceType={"Value": wanted})
        assert refused.value.response["Error"]["Code"] == code
    assert len(sent) == asked
    assert Instance.objects.get(pk=server.pk).vm_state == "stopped"
