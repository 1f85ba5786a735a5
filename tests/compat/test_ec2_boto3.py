"""boto3 as published drives the live stack's EC2 endpoint (issue 18) with an EC2 credential made
by the real `openstack ec2 credentials create`: key pairs, instances with tags and user data
waited on by boto3's own waiters, filters, console output, stop/start, images, terminate;
security groups, an elastic address and a volume. Each resource is then looked up through the
OpenStack API under the uuid its EC2 id maps to."""

from __future__ import annotations

import base64
import json
import subprocess
import time

import pytest
from botocore.exceptions import ClientError

from cloud.bootstrap.seed import read_saved_passwords
from tests.compat import ec2
from tests.compat.ec2 import FAST, ec2_id
from tests.integration.helpers import wait_until
from tests.stack import qcow2_bytes

V = "/compute/v2.1"
USER_DATA = "#!/bin/sh\necho hello from boto3\n"


@pytest.fixture(scope="module")
def pair(stack) -> tuple[str, str]:
    return ec2.ec2_credential(stack.openstack_env())


@pytest.fixture(scope="module")
def boto(stack, pair):
    return ec2.client(stack.url, *pair)


@pytest.fixture(scope="module")
def api(stack):
    return stack.client("2.60")


@pytest.fixture(scope="module")
def ami(api) -> str:
    image_id = api.upload_image("ec2-boto3", qcow2_bytes())
    yield ec2_id("ami", image_id)
    api.request("DELETE", f"/image/v2/images/{image_id}")


def _instances(answer: dict) -> list[dict]:
    return [i for r in answer["Reservations"] for i in r["Instances"]]


def _server(api, instance_id: str) -> dict:
    """The OpenStack server whose uuid the i- id maps to (admin, all projects)."""
    servers = api.get(f"{V}/servers/detail?all_tenants=1").json()["servers"]
    found = [s for s in servers if ec2_id("i", s["id"]) == instance_id]
    assert len(found) == 1, f"{instance_id} is not one OpenStack server: {found}"
    return found[0]


def _code(refused: pytest.ExceptionInfo) -> str:
    return refused.value.response["Error"]["Code"]


def test_the_credential_is_keystones_and_signs_for_its_project(stack, boto, pair):
    listed = subprocess.run([ec2.OPENSTACK, "ec2", "credentials", "list", "-f", "json"],
                            env=stack.openstack_env(), capture_output=True, text=True,
                            timeout=120, check=True)
    assert pair[0] in {row["Access"] for row in json.loads(listed.stdout)}
    regions = boto.describe_regions()["Regions"]
    assert [(r["RegionName"], r["Endpoint"]) for r in regions] == [
        ("RegionOne", f"{stack.url}/ec2")]
    zones = boto.describe_availability_zones()["AvailabilityZones"]
    assert zones and all(z["State"] == "available" for z in zones)


def test_instances_through_their_lifecycle_with_boto3(boto, api, ami):
    key = boto.create_key_pair(KeyName="boto-key")
    assert key["KeyMaterial"].startswith("-----BEGIN") and key["KeyFingerprint"]
    assert api.get(f"{V}/os-keypairs/boto-key").json()["keypair"]["fingerprint"]

    ran = boto.run_instances(
        ImageId=ami, InstanceType="m1.tiny", MinCount=2, MaxCount=2, KeyName="boto-key",
        UserData=USER_DATA,  # boto3 base64-encodes it, as for AWS
        TagSpecifications=[{"ResourceType": "instance", "Tags": [
            {"Key": "role", "Value": "web"}, {"Key": "suite", "Value": "boto3"}]}])
    ids = [i["InstanceId"] for i in ran["Instances"]]
    assert len(ids) == 2 and all(i.startswith("i-") and len(i) == 19 for i in ids)
    assert ran["ReservationId"].startswith("r-")
    assert {i["State"]["Name"] for i in ran["Instances"]} <= {"pending", "running"}

    started = time.monotonic()
    boto.get_waiter("instance_running").wait(InstanceIds=ids, WaiterConfig=FAST)
    assert time.monotonic() - started < 60

    # The same servers through the OpenStack API: uuid -> i- id, key, user data, tags.
    for instance_id in ids:
        server = _server(api, instance_id)
        assert server["status"] == "ACTIVE" and server["key_name"] == "boto-key"
        assert base64.b64decode(server["OS-EXT-SRV-ATTR:user_data"]).decode() == USER_DATA
        metadata = api.get(f"{V}/servers/{server['id']}/metadata").json()["metadata"]
        assert metadata == {"role": "web", "suite": "boto3"}  # tags are Nova's metadata

    boto.create_tags(Resources=[ids[0]], Tags=[{"Key": "tier", "Value": "front"}])
    front = _instances(boto.describe_instances(Filters=[
        {"Name": "tag:tier", "Values": ["front"]},
        {"Name": "instance-state-name", "Values": ["running"]}]))
    assert [i["InstanceId"] for i in front] == [ids[0]]
    assert {"Key": "role", "Value": "web"} in front[0]["Tags"]
    web = _instances(boto.describe_instances(Filters=[{"Name": "tag:role", "Values": ["web"]}]))
    assert sorted(i["InstanceId"] for i in web) == sorted(ids)
    assert all(i["ImageId"] == ami and i["InstanceType"] == "m1.tiny" and i["KeyName"] == "boto-key"
               for i in web)
    assert _instances(boto.describe_instances(Filters=[
        {"Name": "tag:role", "Values": ["db"]}])) == []
    pages = boto.get_paginator("describe_instances").paginate(
        Filters=[{"Name": "tag:suite", "Values": ["boto3"]}], PaginationConfig={"PageSize": 5})
    paged = [i["InstanceId"] for page in pages for r in page["Reservations"]
             for i in r["Instances"]]
    assert sorted(paged) == sorted(ids)

    console = boto.get_console_output(InstanceId=ids[0])
    assert console["InstanceId"] == ids[0]
    # botocore base64-decodes Output itself: text that was not sent encoded comes out garbled.
    assert "test driver" in console["Output"]

    boto.stop_instances(InstanceIds=[ids[0]])
    boto.get_waiter("instance_stopped").wait(InstanceIds=[ids[0]], WaiterConfig=FAST)
    assert _server(api, ids[0])["status"] == "SHUTOFF"
    time.sleep(1.1)  # the same StopInstances within the same second is the same signature: a replay
    again = boto.stop_instances(InstanceIds=[ids[0]])["StoppingInstances"][0]
    assert again["PreviousState"]["Name"] == again["CurrentState"]["Name"] == "stopped"
    boto.start_instances(InstanceIds=[ids[0]])
    boto.get_waiter("instance_running").wait(InstanceIds=[ids[0]], WaiterConfig=FAST)
    assert _server(api, ids[0])["status"] == "ACTIVE"

    image = boto.create_image(InstanceId=ids[0], Name="boto-snap")["ImageId"]
    assert image.startswith("ami-") and image != ami
    boto.get_waiter("image_available").wait(ImageIds=[image], WaiterConfig=FAST)
    shown = boto.describe_images(ImageIds=[image])["Images"][0]
    assert shown["Name"] == "boto-snap" and shown["State"] == "available"
    glance = api.get("/image/v2/images?name=boto-snap").json()["images"]
    assert [ec2_id("ami", g["id"]) for g in glance] == [image]
    boto.deregister_image(ImageId=image)
    assert api.get("/image/v2/images?name=boto-snap").json()["images"] == []

    boto.terminate_instances(InstanceIds=ids)
    boto.get_waiter("instance_terminated").wait(InstanceIds=ids, WaiterConfig=FAST)
    servers = api.get(f"{V}/servers?all_tenants=1").json()["servers"]
    assert not {ec2_id("i", s["id"]) for s in servers} & set(ids)
    boto.delete_key_pair(KeyName="boto-key")
    assert api.get(f"{V}/os-keypairs/boto-key").status_code == 404


def test_another_projects_instance_is_not_found_and_a_foreign_id_is_refused(stack, boto, ami):
    [password] = read_saved_passwords(stack.workdir)["demo"][:1]
    demo = {**stack.openstack_env(), "OS_USERNAME": "demo", "OS_PASSWORD": password,
            "OS_PROJECT_NAME": "demo"}
    theirs = ec2.client(stack.url, *ec2.ec2_credential(demo))
    mine = boto.run_instances(ImageId=ami, InstanceType="m1.tiny", MinCount=1, MaxCount=1)
    instance_id = mine["Instances"][0]["InstanceId"]
    boto.get_waiter("instance_running").wait(InstanceIds=[instance_id], WaiterConfig=FAST)
    try:
        with pytest.raises(ClientError) as refused:
            theirs.describe_instances(InstanceIds=[instance_id])
        assert _code(refused) == "InvalidInstanceID.NotFound"
        with pytest.raises(ClientError) as refused:
            theirs.terminate_instances(InstanceIds=[instance_id])
        assert _code(refused) == "InvalidInstanceID.NotFound"
        assert _instances(theirs.describe_instances()) == []
    finally:
        boto.terminate_instances(InstanceIds=[instance_id])
        boto.get_waiter("instance_terminated").wait(InstanceIds=[instance_id], WaiterConfig=FAST)


def _private_subnet(api) -> dict:
    subnets = api.get("/network/v2.0/subnets?name=private-subnet").json()["subnets"]
    assert len(subnets) == 1
    return subnets[0]


def test_subnets_security_groups_and_an_elastic_address_with_boto3(boto, api, ami):
    subnet = _private_subnet(api)
    subnet_id = ec2_id("subnet", subnet["id"])
    described = boto.describe_subnets(SubnetIds=[subnet_id])["Subnets"]
    assert [(s["SubnetId"], s["CidrBlock"]) for s in described] == [(subnet_id, "10.0.0.0/24")]
    vpc_id = described[0]["VpcId"]
    assert vpc_id == ec2_id("vpc", subnet["network_id"])
    assert vpc_id in {v["VpcId"] for v in boto.describe_vpcs()["Vpcs"]}

    group = boto.create_security_group(GroupName="boto-web", Description="web from boto3",
                                       VpcId=vpc_id)["GroupId"]
    assert group.startswith("sg-")
    boto.authorize_security_group_ingress(GroupId=group, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
        "IpRanges": [{"CidrIp": "192.0.2.0/24"}]}])
    shown = boto.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]
    assert shown["GroupName"] == "boto-web"
    assert any(p["IpProtocol"] == "tcp" and p["FromPort"] == 22 and p["ToPort"] == 22
               and {"CidrIp": "192.0.2.0/24"} in [{"CidrIp": r["CidrIp"]} for r in p["IpRanges"]]
               for p in shown["IpPermissions"])
    neutron = [g for g in api.get("/network/v2.0/security-groups?name=boto-web").json()[
        "security_groups"]]
    assert [ec2_id("sg", g["id"]) for g in neutron] == [group]
    assert any(r["direction"] == "ingress" and r["port_range_min"] == 22
               and r["remote_ip_prefix"] == "192.0.2.0/24"
               for r in neutron[0]["security_group_rules"])

    ran = boto.run_instances(ImageId=ami, InstanceType="m1.tiny", MinCount=1, MaxCount=1,
                             SubnetId=subnet_id, SecurityGroupIds=[group])
    instance_id = ran["Instances"][0]["InstanceId"]
    boto.get_waiter("instance_running").wait(InstanceIds=[instance_id], WaiterConfig=FAST)
    instance = _instances(boto.describe_instances(InstanceIds=[instance_id]))[0]
    assert instance["SubnetId"] == subnet_id and instance["VpcId"] == vpc_id
    assert instance["PrivateIpAddress"].startswith("10.0.0.")
    assert group in {g["GroupId"] for g in instance["SecurityGroups"]}

    address = boto.allocate_address(Domain="vpc")
    allocation, public_ip = address["AllocationId"], address["PublicIp"]
    assert allocation.startswith("eipalloc-") and public_ip.startswith("172.24.4.")
    association = boto.associate_address(AllocationId=allocation,
                                         InstanceId=instance_id)["AssociationId"]
    assert association.startswith("eipassoc-")
    described = boto.describe_addresses(AllocationIds=[allocation])["Addresses"][0]
    assert described["InstanceId"] == instance_id and described["PublicIp"] == public_ip
    assert described["PrivateIpAddress"] == instance["PrivateIpAddress"]
    fips = api.get(f"/network/v2.0/floatingips?floating_ip_address={public_ip}").json()[
        "floatingips"]
    assert [(ec2_id("eipalloc", f["id"]), f["fixed_ip_address"]) for f in fips] == [
        (allocation, instance["PrivateIpAddress"])]
    shown = _instances(boto.describe_instances(InstanceIds=[instance_id]))[0]
    assert shown.get("PublicIpAddress") == public_ip

    boto.disassociate_address(AssociationId=association)
    assert "InstanceId" not in boto.describe_addresses(AllocationIds=[allocation])["Addresses"][0]
    boto.release_address(AllocationId=allocation)
    assert api.get(f"/network/v2.0/floatingips?floating_ip_address={public_ip}").json()[
        "floatingips"] == []
    # The same parameters signed within the same second make the same signature, which the
    # replay rule refuses (AuthFailure): EC2's answer to a second release is seen a second on.
    time.sleep(1.1)
    with pytest.raises(ClientError) as refused:
        boto.release_address(AllocationId=allocation)
    assert _code(refused) in ("InvalidAllocationID.NotFound", "InvalidAddress.NotFound")

    boto.revoke_security_group_ingress(GroupId=group, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
        "IpRanges": [{"CidrIp": "192.0.2.0/24"}]}])
    assert boto.describe_security_groups(GroupIds=[group])["SecurityGroups"][0][
        "IpPermissions"] == []
    boto.terminate_instances(InstanceIds=[instance_id])
    boto.get_waiter("instance_terminated").wait(InstanceIds=[instance_id], WaiterConfig=FAST)
    boto.delete_security_group(GroupId=group)
    with pytest.raises(ClientError) as refused:
        boto.describe_security_groups(GroupIds=[group])
    assert _code(refused) == "InvalidGroup.NotFound"
    assert api.get("/network/v2.0/security-groups?name=boto-web").json()["security_groups"] == []


def test_a_volume_created_attached_detached_and_deleted_with_boto3(stack, boto, api, ami):
    zone = boto.describe_availability_zones()["AvailabilityZones"][0]["ZoneName"]
    ran = boto.run_instances(ImageId=ami, InstanceType="m1.tiny", MinCount=1, MaxCount=1)
    instance_id = ran["Instances"][0]["InstanceId"]
    volume = boto.create_volume(Size=1, AvailabilityZone=zone, TagSpecifications=[{
        "ResourceType": "volume", "Tags": [{"Key": "Name", "Value": "boto-data"}]}])
    volume_id = volume["VolumeId"]
    assert volume_id.startswith("vol-") and volume["Size"] == 1
    boto.get_waiter("volume_available").wait(VolumeIds=[volume_id], WaiterConfig=FAST)
    boto.get_waiter("instance_running").wait(InstanceIds=[instance_id], WaiterConfig=FAST)
    server = _server(api, instance_id)

    boto.attach_volume(VolumeId=volume_id, InstanceId=instance_id, Device="/dev/vdb")
    boto.get_waiter("volume_in_use").wait(VolumeIds=[volume_id], WaiterConfig=FAST)

    # As in EC2, the volume is in-use from the request on; the attachment says when the host
    # has plugged it in.
    def attachments() -> list[tuple[str, str, str]]:
        volume = boto.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]
        return [(a["InstanceId"], a["State"], a["Device"]) for a in volume["Attachments"]]
    wait_until(lambda: attachments() == [(instance_id, "attached", "/dev/vdb")], timeout=60,
               what="the attachment to be attached")
    seen = api.get(f"{V}/servers/{server['id']}").json()["server"][
        "os-extended-volumes:volumes_attached"]
    assert [ec2_id("vol", v["id"]) for v in seen] == [volume_id]

    boto.detach_volume(VolumeId=volume_id)
    boto.get_waiter("volume_available").wait(VolumeIds=[volume_id], WaiterConfig=FAST)
    assert api.get(f"{V}/servers/{server['id']}").json()["server"][
        "os-extended-volumes:volumes_attached"] == []
    boto.delete_volume(VolumeId=volume_id)
    boto.get_waiter("volume_deleted").wait(VolumeIds=[volume_id], WaiterConfig=FAST)
    project = server["tenant_id"]
    volumes = api.get(f"/volume/v3/{project}/volumes").json()["volumes"]
    assert volume_id not in {ec2_id("vol", v["id"]) for v in volumes}

    boto.terminate_instances(InstanceIds=[instance_id])
    boto.get_waiter("instance_terminated").wait(InstanceIds=[instance_id], WaiterConfig=FAST)
