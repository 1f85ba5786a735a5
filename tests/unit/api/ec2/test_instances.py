"""EC2 instances through boto3: RunInstances as Nova's create, DescribeInstances' bodies,
reservations, filters and paging, the state changes of Start/Stop/Reboot/Terminate driven to
their end by the hosts' reports as the conductor applies them, and boto3's own waiter."""

from __future__ import annotations

import base64

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from cloud.compute.metadata import Guest, ec2_meta_data
from cloud.compute.models import ComputeNode, Instance
from cloud.conductor.instance_events import apply_instance_event
from cloud.ids import ec2_id
from cloud.network.models import Port
from compute_agent import messages as msg
from tests.factories import claim, host_state, host_up, make_node, make_server

pytestmark = pytest.mark.django_db


def _server(instance_id: str) -> Instance:
    return next(i for i in Instance.objects.all() if ec2_id("i", i.uuid) == instance_id)


def _report(server: Instance, event: str, **fields) -> None:
    apply_instance_event(msg.InstanceEvent(
        request_id="req-test", instance_uuid=str(server.uuid), host=server.host or "compute-1",
        event=event, **fields))
    server.refresh_from_db()


def _placed(server: Instance) -> None:
    """What the scheduler does: the server claimed on compute-1, now spawning there."""
    node = ComputeNode.objects.filter(host="compute-1").first() or make_node("compute-1")
    assert claim(server, host_state(node))
    server.refresh_from_db()


def _active(instance_id: str) -> Instance:
    server = _server(instance_id)
    _placed(server)
    _report(server, msg.EVENT_SPAWNED, power_state=msg.POWER_RUNNING)
    assert server.vm_state == "active"
    return server


def _run(ec2, image, **kw):
    kw.setdefault("MinCount", 1)
    kw.setdefault("MaxCount", 1)
    kw.setdefault("InstanceType", "m1.tiny")
    return ec2.run_instances(ImageId=ec2_id("ami", image.id), **kw)


@pytest.fixture
def ec2(ec2_as, member):
    return ec2_as(member)


# --- RunInstances


def test_run_instances_answers_the_reservation_nova_made(ec2, member, tiny, image, sent):
    ec2.import_key_pair(KeyName="k1", PublicKeyMaterial=_PUBLIC_KEY)
    answer = _run(ec2, image, KeyName="k1", UserData="#cloud-config\n")
    assert answer["ReservationId"].startswith("r-")
    assert answer["OwnerId"] == member.project.id
    (body,) = answer["Instances"]
    server = _server(body["InstanceId"])
    assert body["InstanceId"] == ec2_id("i", server.uuid)
    assert body["ImageId"] == ec2_id("ami", image.id)
    assert body["State"] == {"Code": 0, "Name": "pending"}
    assert (body["InstanceType"], body["KeyName"], body["AmiLaunchIndex"]) == ("m1.tiny", "k1", 0)
    assert body["RootDeviceType"] == "instance-store"
    assert body["SecurityGroups"][0]["GroupName"] == "default"
    assert body["SecurityGroups"][0]["GroupId"].startswith("sg-")
    assert server.reservation_id == answer["ReservationId"]
    # boto3 sent the user data base64-encoded, which is Nova's user_data as it is
    assert base64.b64decode(server.user_data) == b"#cloud-config\n"
    assert server.key_name == "k1" and server.flavor_id == tiny.pk
    assert [s.name for s in sent] == [msg.TASK_SCHEDULE_INSTANCE]


def test_min_and_max_count_make_one_reservation_of_several(ec2, tiny, image, sent):
    answer = _run(ec2, image, MinCount=2, MaxCount=3)
    assert [i["AmiLaunchIndex"] for i in answer["Instances"]] == [0, 1, 2]
    assert {s.reservation_id for s in Instance.objects.all()} == {answer["ReservationId"]}
    described = ec2.describe_instances()["Reservations"]
    assert [(r["ReservationId"], len(r["Instances"])) for r in described] == [
        (answer["ReservationId"], 3)]


def test_max_count_beyond_the_quota_launches_min_count(ec2, member, tiny, image, sent):
    from cloud.compute import quotas

    quotas.update_limits(member.project.id, {"instances": 2})
    answer = _run(ec2, image, MinCount=2, MaxCount=5)
    assert len(answer["Instances"]) == 2 and Instance.objects.count() == 2


def test_a_retry_signed_alike_gets_the_first_reservation_and_boots_nothing(ec2, tiny, image,
                                                                           sent):
    """boto3 fills RunInstances' ClientToken itself; a retry re-signed within the same second
    carries the very same signature, and must reach the idempotent answer, not a refusal."""
    from django.test import Client

    from .test_endpoint import _captured
    signed = _captured(ec2, lambda c: _run(c, image))
    assert b"ClientToken=" in signed["body"] if isinstance(signed["body"], bytes) else \
        "ClientToken=" in signed["body"]
    first = Instance.objects.get()
    again = Client().post("/ec2", signed["body"],
                          content_type="application/x-www-form-urlencoded; charset=utf-8",
                          **signed["headers"])
    assert again.status_code == 200, again.content
    assert ec2_id("i", first.uuid).encode() in again.content
    assert Instance.objects.count() == 1


def test_the_same_client_token_returns_the_same_reservation(ec2, ec2_as, member, other, tiny,
                                                            image, sent):
    first = _run(ec2, image, ClientToken="tok-1")
    again = _run(ec2_as(member), image, ClientToken="tok-1")
    assert again["ReservationId"] == first["ReservationId"]
    assert again["Instances"][0]["InstanceId"] == first["Instances"][0]["InstanceId"]
    assert again["Instances"][0]["ClientToken"] == "tok-1"
    assert Instance.objects.count() == 1
    third = _run(ec2, image, ClientToken="tok-2")
    assert third["ReservationId"] != first["ReservationId"] and Instance.objects.count() == 2
    # a token is the project's own: another project's same token launches its own instance
    image.visibility = "public"
    image.save(update_fields=["visibility"])
    theirs = _run(ec2_as(other), image, ClientToken="tok-1")
    assert theirs["ReservationId"] != first["ReservationId"] and Instance.objects.count() == 3
    # the token is no tag of the instance
    assert again["Instances"][0].get("Tags", []) == []
    # the same token asking for something else is refused, as EC2 refuses it
    with pytest.raises(ec2.exceptions.ClientError) as refused:
        _run(ec2, image, ClientToken="tok-1", MaxCount=2)
    assert refused.value.response["Error"]["Code"] == "IdempotentParameterMismatch"
    assert Instance.objects.count() == 3


def test_a_subnet_places_the_instance_on_its_network(ec2, tiny, image, nets, sent):
    subnet = nets["alpha"].subnets.get()
    answer = _run(ec2, image, SubnetId=ec2_id("subnet", subnet.pk))
    body = answer["Instances"][0]
    port = Port.objects.get(device_id=str(_server(body["InstanceId"]).uuid))
    assert port.network_id == nets["alpha"].pk
    assert body["SubnetId"] == ec2_id("subnet", subnet.pk)
    assert body["VpcId"] == ec2_id("vpc", nets["alpha"].pk)
    address = port.fixed_ips[0]["ip_address"]
    assert body["PrivateIpAddress"] == address and address.startswith("10.2.0.")
    assert body["NetworkInterfaces"][0]["PrivateIpAddress"] == address
    found = ec2.describe_instances(Filters=[{"Name": "subnet-id",
                                             "Values": [body["SubnetId"]]}])["Reservations"]
    assert [r["Instances"][0]["InstanceId"] for r in found] == [body["InstanceId"]]
    assert ec2.describe_instances(Filters=[{"Name": "private-ip-address",
                                            "Values": ["10.9.*"]}])["Reservations"] == []


def test_security_groups_by_id_and_by_name(ec2, member, tiny, image, nets, sent):
    from cloud.network.models import SecurityGroup

    web = SecurityGroup.objects.create(name="web", project_id=member.project.id)
    subnet = nets["alpha"].subnets.get()
    body = _run(ec2, image, SubnetId=ec2_id("subnet", subnet.pk),
                SecurityGroupIds=[ec2_id("sg", web.pk)], SecurityGroups=["default"])[
        "Instances"][0]
    default = SecurityGroup.objects.get(project_id=member.project.id, name="default")
    assert [(g["GroupName"], g["GroupId"]) for g in body["SecurityGroups"]] == [
        ("web", ec2_id("sg", web.pk)), ("default", ec2_id("sg", default.pk))]
    assert _server(body["InstanceId"]).security_groups == ["web", "default"]


def test_tag_specifications_tag_the_instance_and_name_it(ec2, tiny, image, sent):
    body = _run(ec2, image, TagSpecifications=[{"ResourceType": "instance", "Tags": [
        {"Key": "Name", "Value": "web-1"}, {"Key": "team", "Value": "blue"}]}])["Instances"][0]
    assert sorted((t["Key"], t["Value"]) for t in body["Tags"]) == [("Name", "web-1"),
                                                                   ("team", "blue")]
    assert _server(body["InstanceId"]).display_name == "web-1"
    found = ec2.describe_instances(Filters=[{"Name": "tag:team", "Values": ["blue"]}])
    assert len(found["Reservations"]) == 1
    assert ec2.describe_instances(Filters=[{"Name": "tag:team", "Values": ["red"]}])[
        "Reservations"] == []


def test_a_root_block_device_boots_from_a_volume_of_that_size(ec2, tiny, image, sent):
    from django.utils import timezone

    from cloud.compute.models import BlockDeviceMapping
    from cloud.volumes.models import Volume, VolumeHost

    VolumeHost.objects.create(name="storage-1", total_gb=100, free_gb=100,
                              last_seen=timezone.now())
    body = _run(ec2, image, BlockDeviceMappings=[
        {"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": 3}},
        {"DeviceName": "/dev/sdb", "Ebs": {"VolumeSize": 1, "DeleteOnTermination": False}}],
        TagSpecifications=[{"ResourceType": "volume", "Tags": [{"Key": "k", "Value": "v"}]}],
    )["Instances"][0]
    server = _server(body["InstanceId"])
    root, data = BlockDeviceMapping.objects.filter(instance=server).order_by("id")
    assert (root.boot_index, root.source_type, root.image_id, root.volume_size,
            root.delete_on_termination) == (0, "image", str(image.id), 3, True)
    assert (data.boot_index, data.source_type, data.volume_size,
            data.delete_on_termination) == (None, "blank", 1, False)
    assert server.image_ref == ""
    assert body["RootDeviceType"] == "ebs"
    assert [m["Ebs"]["VolumeId"] for m in body["BlockDeviceMappings"]] == [
        ec2_id("vol", root.volume_id), ec2_id("vol", data.volume_id)]
    assert Volume.objects.get(pk=root.volume_id).metadata == {"k": "v"}


# --- DescribeInstances


def test_describe_instances_shows_state_zone_address_and_floating_ip(ec2, member, tiny, sent):
    from cloud.network.models import FloatingIp, Network
    from tests.factories import give_address

    server = make_server(member, flavor=tiny, image_ref="", launch_index=0,
                         reservation_id="r-0123abcd")
    port = give_address(server, addr="10.0.0.7")
    public = Network.objects.create(name="public", external=True, network_type="flat")
    holder = Port.objects.create(network=public, device_owner="network:floatingip",
                                 mac_address="fa:16:3e:ff:00:01",
                                 fixed_ips=[{"ip_address": "203.0.113.9"}])
    FloatingIp.objects.create(floating_network=public, floating_port=holder,
                              floating_ip_address="203.0.113.9", port=port,
                              fixed_ip_address="10.0.0.7", project=member.project)
    (reservation,) = ec2.describe_instances()["Reservations"]
    assert reservation["ReservationId"] == "r-0123abcd"
    body = reservation["Instances"][0]
    assert body["State"] == {"Code": 16, "Name": "running"}
    assert body["PrivateIpAddress"] == "10.0.0.7" and body["PublicIpAddress"] == "203.0.113.9"
    assert body["PrivateDnsName"] == "ip-10-0-0-7.ec2.internal"
    assert body["Placement"]["AvailabilityZone"] == "nova"
    assert "ImageId" not in body  # booted from a volume: no image


def test_describe_instances_instance_id_is_the_metadata_services_instance_id(ec2, member, tiny,
                                                                             image, sent):
    from tests.factories import give_address

    server = make_server(member, image_ref=str(image.id))
    port = give_address(server)
    tree = ec2_meta_data(Guest(server, port, "10.0.0.10"))
    body = ec2.describe_instances()["Reservations"][0]["Instances"][0]
    assert body["InstanceId"] == tree["instance-id"]
    assert body["ImageId"] == tree["ami-id"]


@pytest.mark.parametrize("name, values, hits", [
    ("instance-state-name", ["running"], ["a"]),
    ("instance-state-name", ["stopped"], ["b"]),
    ("instance-state-code", ["80"], ["b"]),
    ("instance-type", ["m1.tiny"], ["a", "b"]),
    ("instance-type", ["m1.*"], ["a", "b"]),
    ("key-name", ["kb"], ["b"]),
    ("availability-zone", ["nova"], ["a", "b"]),
    ("reservation-id", ["r-000000aa"], ["a"]),
    ("launch-index", ["0"], ["a", "b"]),
    ("launch-time", ["20??-*Z"], ["a", "b"]),
    ("launch-time", ["1999-*"], []),
    ("owner-id", ["nobody"], []),
    ("root-device-type", ["instance-store"], ["a", "b"]),
    ("group-name", ["default"], ["a", "b"]),
])
def test_describe_instances_filters(ec2, member, sent, name, values, hits):
    a = make_server(member, "a", reservation_id="r-000000aa")
    b = make_server(member, "b", reservation_id="r-000000bb", vm_state="stopped",
                    power_state="shutdown", key_name="kb")
    names = {ec2_id("i", a.uuid): "a", ec2_id("i", b.uuid): "b"}
    found = ec2.describe_instances(Filters=[{"Name": name, "Values": values}])
    assert sorted(names[i["InstanceId"]] for r in found["Reservations"]
                  for i in r["Instances"]) == hits


def test_describe_instances_pages_with_boto3s_paginator(ec2, member, sent):
    made = [make_server(member, f"vm{i}") for i in range(7)]
    pages = list(ec2.get_paginator("describe_instances").paginate(
        PaginationConfig={"PageSize": 5}))
    assert len(pages) == 2
    seen = [i["InstanceId"] for p in pages for r in p["Reservations"] for i in r["Instances"]]
    assert sorted(seen) == sorted(ec2_id("i", s.uuid) for s in made)


def test_describe_instances_reads_ten_servers_in_as_many_queries_as_one(ec2, member, nets,
                                                                          sent):
    from tests.factories import give_address

    def queries() -> int:
        ec2.describe_instances()  # the credential is read and cached by the first call
        with CaptureQueriesContext(connection) as captured:
            answer = ec2.describe_instances()
        assert answer["Reservations"]
        return len(captured)

    from uuid import uuid4

    from cloud.compute.models import BlockDeviceMapping
    from cloud.network.models import SecurityGroup

    SecurityGroup.objects.create(name="web", project_id=member.project.id)

    def server(name: str, address: str) -> None:
        # each with an address, a tag, a volume and two security groups: all read per page
        made = make_server(member, name, metadata={"Name": name},
                           security_groups=["default", "web"], reservation_id=f"r-{name}")
        give_address(made, addr=address)
        BlockDeviceMapping.objects.create(instance=made, volume_id=uuid4(),
                                          device_name="/dev/vdb")

    server("first", "10.0.0.20")
    one = queries()
    for i in range(9):
        server(f"more{i}", f"10.0.0.{30 + i}")
    assert queries() == one


# --- waiting for a launch


def test_boto3s_instance_running_waiter_sees_the_launch_through(ec2, tiny, image, sent):
    instance_id = _run(ec2, image)["Instances"][0]["InstanceId"]
    server = _server(instance_id)
    polls = []

    def host_works(**_):
        # Each poll of the waiter finds the build one step further: scheduled, then spawned.
        polls.append(server.task_state)
        if server.task_state == "scheduling":
            _placed(server)
        elif server.task_state == "spawning":
            _report(server, msg.EVENT_SPAWNED, power_state=msg.POWER_RUNNING)

    ec2.meta.events.register("before-call.ec2.DescribeInstances", host_works)
    ec2.get_waiter("instance_running").wait(InstanceIds=[instance_id],
                                            WaiterConfig={"Delay": 0, "MaxAttempts": 5})
    assert polls == ["scheduling", "spawning"]  # the second poll found it running
    assert ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][
        0]["State"]["Name"] == "running"


# --- Start, Stop, Reboot, Terminate


def test_stop_then_start_answer_each_state_change(ec2, ec2_as, member, tiny, image, sent):
    again_client = ec2_as(member)
    instance_id = _run(ec2, image)["Instances"][0]["InstanceId"]
    server = _active(instance_id)
    (change,) = ec2.stop_instances(InstanceIds=[instance_id])["StoppingInstances"]
    assert change == {"InstanceId": instance_id, "PreviousState": {"Code": 16, "Name": "running"},
                      "CurrentState": {"Code": 64, "Name": "stopping"}}
    assert sent[-1].name == msg.TASK_STOP
    _report(server, msg.EVENT_STOPPED, power_state=msg.POWER_SHUTDOWN)
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[instance_id],
                                            WaiterConfig={"Delay": 0, "MaxAttempts": 1})
    # stopping a stopped instance changes nothing and is no error, as in EC2 (sent with a
    # second credential: the same signed change twice in a second is refused as a replay)
    (again,) = again_client.stop_instances(InstanceIds=[instance_id])["StoppingInstances"]
    assert again["PreviousState"] == again["CurrentState"] == {"Code": 80, "Name": "stopped"}
    (change,) = ec2.start_instances(InstanceIds=[instance_id])["StartingInstances"]
    assert (change["PreviousState"]["Name"], change["CurrentState"]["Name"]) == (
        "stopped", "pending")
    assert sent[-1].name == msg.TASK_START


def test_starting_twice_is_incorrect_instance_state(ec2, ec2_as, member, sent):
    server = make_server(member, vm_state="stopped", power_state="shutdown")
    instance_id = ec2_id("i", server.uuid)
    ec2.start_instances(InstanceIds=[instance_id])
    with pytest.raises(ec2.exceptions.ClientError) as refused:
        ec2_as(member).start_instances(InstanceIds=[instance_id])
    assert refused.value.response["Error"]["Code"] == "IncorrectInstanceState"


def test_reboot_sends_the_host_a_reboot(ec2, member, sent):
    server = make_server(member)
    ec2.reboot_instances(InstanceIds=[ec2_id("i", server.uuid)])
    assert [s.name for s in sent] == [msg.TASK_REBOOT]
    server.refresh_from_db()
    assert server.task_state == "rebooting"


def test_terminate_answers_shutting_down_then_terminated_for_an_hour(ec2, ec2_as, member,
                                                                     sent):
    server = make_server(member)
    instance_id = ec2_id("i", server.uuid)
    (change,) = ec2.terminate_instances(InstanceIds=[instance_id])["TerminatingInstances"]
    assert (change["PreviousState"]["Name"], change["CurrentState"]["Name"]) == (
        "running", "shutting-down")
    _report(server, msg.EVENT_DESTROYED)
    assert server.deleted
    body = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    assert body["State"] == {"Code": 48, "Name": "terminated"}
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[instance_id],
                                               WaiterConfig={"Delay": 0, "MaxAttempts": 1})
    (again,) = ec2_as(member).terminate_instances(InstanceIds=[instance_id])[
        "TerminatingInstances"]
    assert again["CurrentState"]["Name"] == "terminated"
    # a terminated instance cannot be started, and after the hour it is gone
    with pytest.raises(ec2.exceptions.ClientError) as refused:
        ec2.start_instances(InstanceIds=[instance_id])
    assert refused.value.response["Error"]["Code"] == "InvalidInstanceID.NotFound"
    from datetime import timedelta

    Instance.objects.filter(pk=server.pk).update(deleted_at=server.deleted_at -
                                                 timedelta(hours=2))
    assert ec2.describe_instances()["Reservations"] == []


def test_describe_instance_status(ec2, member, sent):
    running = make_server(member, "up")
    stopped = make_server(member, "down", vm_state="stopped", power_state="shutdown")
    (status,) = ec2.describe_instance_status()["InstanceStatuses"]
    assert status["InstanceId"] == ec2_id("i", running.uuid)
    assert status["InstanceStatus"]["Status"] == status["SystemStatus"]["Status"] == "ok"
    every = ec2.describe_instance_status(IncludeAllInstances=True)["InstanceStatuses"]
    shown = {s["InstanceId"]: s["InstanceStatus"]["Status"] for s in every}
    assert shown == {ec2_id("i", running.uuid): "ok",
                     ec2_id("i", stopped.uuid): "not-applicable"}


def test_instance_status_is_impaired_while_its_host_is_silent_or_forced_down(ec2, member, sent):
    running = make_server(member, "up", host="quiet-host")
    host_up("quiet-host", up=False)  # no heartbeat for an hour

    (status,) = ec2.describe_instance_status()["InstanceStatuses"]
    assert status["SystemStatus"]["Status"] == "impaired"
    assert status["SystemStatus"]["Details"] == [{"Name": "reachability", "Status": "failed"}]
    assert status["InstanceStatus"]["Status"] == "insufficient-data"
    impaired = ec2.describe_instance_status(
        Filters=[{"Name": "system-status.status", "Values": ["impaired"]}])["InstanceStatuses"]
    assert [s["InstanceId"] for s in impaired] == [ec2_id("i", running.uuid)]

    service = host_up("quiet-host")
    (status,) = ec2.describe_instance_status()["InstanceStatuses"]
    assert status["SystemStatus"]["Status"] == status["InstanceStatus"]["Status"] == "ok"
    service.forced_down = True
    service.save(update_fields=["forced_down"])
    (status,) = ec2.describe_instance_status()["InstanceStatuses"]
    assert status["SystemStatus"]["Status"] == "impaired"


_PUBLIC_KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDF0bDfK5iIlDLhdIqyVhRRMu+0ulZnLJbe/sVFG"
               "7o0d ec2@test")


@pytest.mark.parametrize("power, shown", [("running", "running"), ("shutdown", "stopped")])
def test_a_server_in_error_is_shown_by_its_power_and_started_by_a_hard_reboot(
        ec2, member, sent, power, shown):
    server = make_server(member, vm_state="error", power_state=power)
    instance_id = ec2_id("i", server.uuid)
    body = ec2.describe_instances()["Reservations"][0]["Instances"][0]
    assert body["State"]["Name"] == shown
    assert body["StateReason"]["Code"] == "Server.InternalError"
    if shown == "stopped":
        (change,) = ec2.start_instances(InstanceIds=[instance_id])["StartingInstances"]
        assert [s.name for s in sent] == [msg.TASK_REBOOT]
        server.refresh_from_db()
        assert server.task_state == "rebooting_hard"
        assert change["PreviousState"]["Name"] == "stopped"
    else:
        (change,) = ec2.stop_instances(InstanceIds=[instance_id])["StoppingInstances"]
        assert [s.name for s in sent] == [msg.TASK_STOP]
        assert change["CurrentState"]["Name"] == "stopping"


def test_a_root_snapshot_and_a_zone_are_what_nova_is_asked_for(ec2, member, tiny, image, sent):
    from django.utils import timezone

    from cloud.compute.models import BlockDeviceMapping
    from cloud.volumes.models import Volume, VolumeHost, VolumeSnapshot

    storage = VolumeHost.objects.create(name="storage-1", total_gb=100, free_gb=100,
                                        last_seen=timezone.now())
    make_node("compute-1")  # a host in the zone asked for
    # (a volume from a snapshot is made where the snapshot's volume is)
    source = Volume.objects.create(project=member.project, size=2, status="available",
                                   bootable=True, host=storage)
    snapshot = VolumeSnapshot.objects.create(volume=source, project=member.project, size=2,
                                             status="available")
    body = _run(ec2, image, Placement={"AvailabilityZone": "nova"}, BlockDeviceMappings=[
        {"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": ec2_id("snap", snapshot.pk),
                                            "DeleteOnTermination": False}}])["Instances"][0]
    server = _server(body["InstanceId"])
    (root,) = BlockDeviceMapping.objects.filter(instance=server)
    assert (root.boot_index, root.source_type, root.snapshot_id,
            root.delete_on_termination) == (0, "snapshot", str(snapshot.pk), False)
    assert server.availability_zone == "nova"
    assert body["Placement"]["AvailabilityZone"] == "nova"
    assert body["RootDeviceType"] == "ebs"
