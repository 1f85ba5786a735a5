"""Elastic IPs through boto3: allocate from the external network, describe with filters, associate
with an instance (its port) through the project's router, disassociate, release, and EC2's errors
for an address in use, one already associated, a network with no gateway and another project's
ids. Neutron's API shows the same floating IP mapped the same way."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from cloud.ids import ec2_id
from cloud.network.models import FloatingIp
from tests.factories import make_server

pytestmark = pytest.mark.django_db

N = "/network/v2.0"


def code_of(excinfo) -> str:
    return excinfo.value.response["Error"]["Code"]


def _ok(response, status=201) -> dict:
    assert response.status_code == status, response.content
    return response.json()


@pytest.fixture
def world(api_as, nets, member):
    """alpha's network behind a router whose gateway is on the external network "public", and a
    server of alpha's with a port on it."""
    api = api_as(member)
    router = _ok(api.post(f"{N}/routers", {"router": {"name": "r", "external_gateway_info": {
        "network_id": str(nets["public"].id)}}}))["router"]
    subnet = str(nets["alpha"].subnets.get().id)
    _ok(api.put(f"{N}/routers/{router['id']}/add_router_interface", {"subnet_id": subnet}), 200)
    server = make_server(member)
    port = _ok(api.post(f"{N}/ports", {"port": {
        "network_id": str(nets["alpha"].id), "device_id": str(server.uuid),
        "device_owner": "compute:nova"}}))["port"]
    return {"api": api, "server": server, "port": port, "instance": ec2_id("i", server.uuid),
            "router": router}


def test_allocate_associate_disassociate_release(ec2_as, member, world):
    ec2 = ec2_as(member)
    made = ec2.allocate_address(Domain="vpc", TagSpecifications=[
        {"ResourceType": "elastic-ip", "Tags": [{"Key": "role", "Value": "web"}]}])
    assert made["Domain"] == "vpc" and made["AllocationId"].startswith("eipalloc-")
    assert made["PublicIp"].startswith("203.0.113.")
    allocation = made["AllocationId"]

    association = ec2.associate_address(AllocationId=allocation,
                                        InstanceId=world["instance"])["AssociationId"]
    assert association.startswith("eipassoc-")
    [address] = ec2.describe_addresses(AllocationIds=[allocation])["Addresses"]
    fixed = world["port"]["fixed_ips"][0]["ip_address"]
    assert (address["PublicIp"], address["InstanceId"], address["AssociationId"],
            address["PrivateIpAddress"], address["NetworkInterfaceId"]) == (
        made["PublicIp"], world["instance"], association, fixed,
        ec2_id("eni", world["port"]["id"]))
    assert address["Tags"] == [{"Key": "role", "Value": "web"}]
    # Neutron shows the same mapping
    fip_id = str(FloatingIp.objects.get(floating_ip_address=made["PublicIp"]).pk)
    neutron = _ok(world["api"].get(f"{N}/floatingips/{fip_id}"), 200)["floatingip"]
    assert (neutron["port_id"], neutron["fixed_ip_address"]) == (world["port"]["id"], fixed)

    with pytest.raises(ClientError) as in_use:
        ec2.release_address(AllocationId=allocation)
    assert code_of(in_use) == "InvalidIPAddress.InUse"

    ec2.disassociate_address(AssociationId=association)
    [address] = ec2.describe_addresses(PublicIps=[made["PublicIp"]])["Addresses"]
    assert "AssociationId" not in address and "InstanceId" not in address
    assert _ok(world["api"].get(f"{N}/floatingips/{fip_id}"), 200)["floatingip"]["port_id"] is None
    with pytest.raises(ClientError) as gone:  # (another key: a replayed change is refused)
        ec2_as(member).disassociate_address(AssociationId=association)
    assert code_of(gone) == "InvalidAssociationID.NotFound"

    ec2_as(member).release_address(AllocationId=allocation)
    assert ec2.describe_addresses()["Addresses"] == []
    with pytest.raises(ClientError) as released:
        ec2.describe_addresses(AllocationIds=[allocation])
    assert code_of(released) == "InvalidAllocationID.NotFound"


def test_reassociation_must_be_allowed(ec2_as, member, world, api_as, nets):
    ec2 = ec2_as(member)
    allocation = ec2.allocate_address(Domain="vpc")["AllocationId"]
    ec2.associate_address(AllocationId=allocation, InstanceId=world["instance"])
    second = make_server(member, name="vm2")
    port = _ok(world["api"].post(f"{N}/ports", {"port": {
        "network_id": str(nets["alpha"].id), "device_id": str(second.uuid),
        "device_owner": "compute:nova"}}))["port"]
    with pytest.raises(ClientError) as taken:
        ec2.associate_address(AllocationId=allocation, InstanceId=ec2_id("i", second.uuid))
    assert code_of(taken) == "Resource.AlreadyAssociated"
    ec2.associate_address(AllocationId=allocation, NetworkInterfaceId=ec2_id("eni", port["id"]),
                          AllowReassociation=True)
    [address] = ec2.describe_addresses(Filters=[
        {"Name": "instance-id", "Values": [ec2_id("i", second.uuid)]}])["Addresses"]
    assert address["AllocationId"] == allocation
    assert ec2.describe_addresses(Filters=[
        {"Name": "instance-id", "Values": [world["instance"]]}])["Addresses"] == []


def test_an_instance_whose_network_reaches_no_gateway(ec2_as, member, world):
    ec2 = ec2_as(member)
    allocation = ec2.allocate_address(Domain="vpc")["AllocationId"]
    world["api"].put(f"{N}/routers/{world['router']['id']}/remove_router_interface",
                     {"subnet_id": world["port"]["fixed_ips"][0]["subnet_id"]})
    with pytest.raises(ClientError) as unreachable:
        ec2.associate_address(AllocationId=allocation, InstanceId=world["instance"])
    assert code_of(unreachable) == "Gateway.NotAttached"
    bare = make_server(member, name="no-port")
    with pytest.raises(ClientError) as no_port:
        ec2.associate_address(AllocationId=allocation, InstanceId=ec2_id("i", bare.uuid))
    assert code_of(no_port) == "InvalidInstanceID"


def test_filters_and_bad_input(ec2_as, member, world):
    ec2 = ec2_as(member)
    first = ec2.allocate_address(Domain="vpc")
    ec2_as(member).allocate_address(Domain="vpc")
    assert len(ec2.describe_addresses()["Addresses"]) == 2
    found = ec2.describe_addresses(Filters=[{"Name": "public-ip",
                                             "Values": [first["PublicIp"]]}])["Addresses"]
    assert [a["AllocationId"] for a in found] == [first["AllocationId"]]
    assert len(ec2.describe_addresses(Filters=[{"Name": "domain",
                                                "Values": ["vpc"]}])["Addresses"]) == 2
    for call, code in [
        (lambda: ec2.describe_addresses(PublicIps=["198.51.100.7"]), "InvalidAddress.NotFound"),
        (lambda: ec2.associate_address(AllocationId=first["AllocationId"],
                                       InstanceId="i-00000000000000000"),
         "InvalidInstanceID.NotFound"),
        (lambda: ec2.associate_address(AllocationId=first["AllocationId"]), "MissingParameter"),
        (lambda: ec2.release_address(), "MissingParameter"),
        (lambda: ec2.allocate_address(Domain="classic"), "InvalidParameterValue"),
        (lambda: ec2.disassociate_address(AssociationId="eipassoc-00000000000000000"),
         "InvalidAssociationID.NotFound"),
    ]:
        with pytest.raises(ClientError) as refused:
            call()
        assert code_of(refused) == code


def test_another_projects_address_and_instance_are_missing(ec2_as, member, other, reader,
                                                           world):
    allocation = ec2_as(member).allocate_address(Domain="vpc")["AllocationId"]
    stranger = ec2_as(other)
    assert stranger.describe_addresses()["Addresses"] == []
    for call, code in [
        (lambda: stranger.describe_addresses(AllocationIds=[allocation]),
         "InvalidAllocationID.NotFound"),
        (lambda: stranger.release_address(AllocationId=allocation),
         "InvalidAllocationID.NotFound"),
        (lambda: stranger.associate_address(AllocationId=allocation,
                                            InstanceId=world["instance"]),
         "InvalidAllocationID.NotFound"),
    ]:
        with pytest.raises(ClientError) as refused:
            call()
        assert code_of(refused) == code
    theirs = stranger.allocate_address(Domain="vpc")["AllocationId"]
    with pytest.raises(ClientError) as foreign_instance:
        stranger.associate_address(AllocationId=theirs, InstanceId=world["instance"])
    assert code_of(foreign_instance) == "InvalidInstanceID.NotFound"
    looker = ec2_as(reader)
    assert [a["AllocationId"] for a in looker.describe_addresses()["Addresses"]] == [allocation]
    with pytest.raises(ClientError) as denied:
        looker.allocate_address(Domain="vpc")
    assert code_of(denied) == "UnauthorizedOperation"


def test_dry_run_checks_and_changes_nothing(ec2_as, member, world):
    ec2 = ec2_as(member)
    with pytest.raises(ClientError) as dry:
        ec2.allocate_address(Domain="vpc", DryRun=True)
    assert code_of(dry) == "DryRunOperation"
    assert ec2.describe_addresses()["Addresses"] == []
    allocation = ec2.allocate_address(Domain="vpc")["AllocationId"]
    with pytest.raises(ClientError) as dry:
        ec2.associate_address(AllocationId=allocation, InstanceId=world["instance"],
                              DryRun=True)
    assert code_of(dry) == "DryRunOperation"
    [address] = ec2.describe_addresses()["Addresses"]
    assert "AssociationId" not in address


def test_the_public_ip_names_the_address_too(ec2_as, member, world):
    ec2 = ec2_as(member)
    public_ip = ec2.allocate_address(Domain="vpc")["PublicIp"]
    ec2.associate_address(PublicIp=public_ip, InstanceId=world["instance"])
    [address] = ec2.describe_addresses(Filters=[{"Name": "instance-id",
                                                 "Values": [world["instance"]]}])["Addresses"]
    assert address["PublicIp"] == public_ip
    ec2.disassociate_address(PublicIp=public_ip)
    assert "InstanceId" not in ec2.describe_addresses(PublicIps=[public_ip])["Addresses"][0]
    ec2.release_address(PublicIp=public_ip)
    assert ec2.describe_addresses()["Addresses"] == []
    assert world["api"].get(f"{N}/floatingips").json()["floatingips"] == []
