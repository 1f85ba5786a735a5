"""VPCs and subnets through boto3 over Kumo's networks: what a project sees (its own networks and
the shared one, never the external one or another project's), their shapes and filters, the free
address count, and CreateVpc/CreateSubnet/Delete* through Neutron's service functions."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from cloud.ids import ec2_id
from cloud.network.models import Network, Port, Subnet

pytestmark = pytest.mark.django_db


def code_of(excinfo) -> str:
    return excinfo.value.response["Error"]["Code"]


def test_a_project_sees_its_networks_and_the_shared_one_as_vpcs(ec2_as, member, other, nets):
    vpcs = {v["VpcId"]: v for v in ec2_as(member).describe_vpcs()["Vpcs"]}
    alpha, shared = ec2_id("vpc", nets["alpha"].pk), ec2_id("vpc", nets["shared"].pk)
    assert set(vpcs) == {alpha, shared}  # not the external network, not beta's
    assert (vpcs[alpha]["CidrBlock"], vpcs[alpha]["State"], vpcs[alpha]["IsDefault"]) == (
        "10.2.0.0/24", "available", False)
    assert vpcs[alpha]["CidrBlockAssociationSet"][0]["CidrBlock"] == "10.2.0.0/24"
    assert vpcs[shared]["IsDefault"] is True
    assert vpcs[alpha]["OwnerId"] == member.project.id.replace("-", "")

    beta = ec2_id("vpc", nets["beta"].pk)
    with pytest.raises(ClientError) as hidden:
        ec2_as(member).describe_vpcs(VpcIds=[beta])
    assert code_of(hidden) == "InvalidVpcID.NotFound"
    assert {v["VpcId"] for v in ec2_as(other).describe_vpcs()["Vpcs"]} == {beta, shared}
    found = ec2_as(member).describe_vpcs(Filters=[{"Name": "is-default",
                                                   "Values": ["true"]}])["Vpcs"]
    assert [v["VpcId"] for v in found] == [shared]
    found = ec2_as(member).describe_vpcs(Filters=[{"Name": "cidr",
                                                   "Values": ["10.2.*"]}])["Vpcs"]
    assert [v["VpcId"] for v in found] == [alpha]


def test_subnets_show_their_vpc_and_free_addresses(ec2_as, member, nets, api_as):
    ec2 = ec2_as(member)
    subnet = nets["alpha"].subnets.get()
    [shown] = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [
        ec2_id("vpc", nets["alpha"].pk)]}])["Subnets"]
    assert (shown["SubnetId"], shown["CidrBlock"], shown["State"], shown["AvailabilityZone"],
            shown["MapPublicIpOnLaunch"], shown["DefaultForAz"]) == (
        ec2_id("subnet", subnet.pk), "10.2.0.0/24", "available", "nova", False, False)
    assert shown["AvailableIpAddressCount"] == 253  # .1 is the gateway, .0 and .255 not hosts
    response = api_as(member).post("/network/v2.0/ports", {"port": {
        "network_id": str(nets["alpha"].pk)}})
    assert response.status_code == 201, response.content
    [again] = ec2.describe_subnets(SubnetIds=[shown["SubnetId"]])["Subnets"]
    assert again["AvailableIpAddressCount"] == 252
    ids = {s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]}
    assert ids == {ec2_id("subnet", nets["alpha"].subnets.get().pk),
                   ec2_id("subnet", nets["shared"].subnets.get().pk)}
    with pytest.raises(ClientError) as hidden:
        ec2.describe_subnets(SubnetIds=[ec2_id("subnet", nets["beta"].subnets.get().pk)])
    assert code_of(hidden) == "InvalidSubnetID.NotFound"
    with pytest.raises(ClientError) as bad_filter:
        ec2.describe_subnets(Filters=[{"Name": "colour", "Values": ["x"]}])
    assert code_of(bad_filter) == "InvalidParameterValue"


def test_create_and_delete_a_vpc_and_its_subnet(ec2_as, member, reader, nets):
    ec2 = ec2_as(member)
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16", TagSpecifications=[
        {"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": "lab"}]}])["Vpc"]
    assert (vpc["CidrBlock"], vpc["State"]) == ("10.20.0.0/16", "available")
    network = Network.objects.get(name="lab")
    assert vpc["VpcId"] == ec2_id("vpc", network.pk)
    subnet = ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.20.1.0/24")["Subnet"]
    assert (subnet["VpcId"], subnet["CidrBlock"], subnet["AvailableIpAddressCount"]) == (
        vpc["VpcId"], "10.20.1.0/24", 253)
    [shown] = ec2.describe_vpcs(VpcIds=[vpc["VpcId"]])["Vpcs"]
    assert shown["CidrBlock"] == "10.20.1.0/24" and shown["Tags"] == [
        {"Key": "Name", "Value": "lab"}]
    with pytest.raises(ClientError) as overlap:
        ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.20.1.0/25")
    assert code_of(overlap) == "InvalidSubnet.Conflict"
    with pytest.raises(ClientError) as dependent:
        ec2.delete_vpc(VpcId=vpc["VpcId"])
    assert code_of(dependent) == "DependencyViolation"
    Port.objects.create(network=network, project=member.project, device_owner="compute:nova",
                        mac_address="fa:16:3e:aa:bb:cc", fixed_ips=[
                            {"subnet_id": str(network.subnets.get().pk),
                             "ip_address": "10.20.1.5"}])
    with pytest.raises(ClientError) as in_use:
        ec2.delete_subnet(SubnetId=subnet["SubnetId"])
    assert code_of(in_use) == "DependencyViolation"
    Port.objects.filter(network=network).delete()
    ec2_as(member).delete_subnet(SubnetId=subnet["SubnetId"])
    ec2_as(member).delete_vpc(VpcId=vpc["VpcId"])
    assert not Network.objects.filter(pk=network.pk).exists()

    with pytest.raises(ClientError) as denied:
        ec2_as(reader).create_vpc(CidrBlock="10.30.0.0/16")
    assert code_of(denied) == "UnauthorizedOperation"
    for cidr, code in [("10.0.0.1/16", "InvalidParameterValue"), ("nonsense", "InvalidParameterValue"),
                       ("10.0.0.0/8", "InvalidVpc.Range")]:
        with pytest.raises(ClientError) as bad:
            ec2.create_vpc(CidrBlock=cidr)
        assert code_of(bad) == code


def test_another_projects_vpc_cannot_be_changed(ec2_as, other, nets):
    stranger = ec2_as(other)
    alpha = ec2_id("vpc", nets["alpha"].pk)
    for call, code in [
        (lambda: stranger.delete_vpc(VpcId=alpha), "InvalidVpcID.NotFound"),
        (lambda: stranger.create_subnet(VpcId=alpha, CidrBlock="10.2.9.0/24"),
         "InvalidVpcID.NotFound"),
        (lambda: stranger.delete_subnet(SubnetId=ec2_id(
            "subnet", nets["alpha"].subnets.get().pk)), "InvalidSubnetID.NotFound"),
        # the shared network is seen, not owned: Neutron's refusal
        (lambda: stranger.delete_vpc(VpcId=ec2_id("vpc", nets["shared"].pk)),
         "UnauthorizedOperation"),
    ]:
        with pytest.raises(ClientError) as refused:
            call()
        assert code_of(refused) == code


def test_dry_run_checks_and_changes_nothing(ec2_as, member, nets):
    before = Network.objects.count()
    with pytest.raises(ClientError) as dry:
        ec2_as(member).create_vpc(CidrBlock="10.40.0.0/16", DryRun=True)
    assert code_of(dry) == "DryRunOperation"
    assert Network.objects.count() == before


def test_network_quotas_answer_ec2s_limit_codes(ec2_as, member, admin, api_as, nets):
    ec2 = ec2_as(member)
    vpc_id = ec2.create_vpc(CidrBlock="10.50.0.0/16")["Vpc"]["VpcId"]
    ec2.create_security_group(GroupName="one", Description="1")  # with default: 2 groups
    used_rules = len(ec2.describe_security_group_rules()["SecurityGroupRules"])
    networks_used = Network.objects.filter(project=member.project).count()
    subnets_used = Subnet.objects.filter(project=member.project).count()
    response = api_as(admin).put(f"/network/v2.0/quotas/{member.project.id}", {"quota": {
        "floatingip": 0, "security_group": 2, "security_group_rule": used_rules,
        "network": networks_used, "subnet": subnets_used + 1}})
    assert response.status_code == 200, response.content
    for call, code in [
        (lambda: ec2.allocate_address(Domain="vpc"), "AddressLimitExceeded"),
        (lambda: ec2.create_security_group(GroupName="two", Description="2"),
         "SecurityGroupLimitExceeded"),
        (lambda: ec2.authorize_security_group_ingress(
            GroupName="one", IpProtocol="tcp", FromPort=1, ToPort=1, CidrIp="10.0.0.0/8"),
         "RulesPerSecurityGroupLimitExceeded"),
        (lambda: ec2.create_vpc(CidrBlock="10.60.0.0/16"), "VpcLimitExceeded"),
        (lambda: ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.50.1.0/24"), None),
        (lambda: ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.50.2.0/24"),
         "SubnetLimitExceeded"),
    ]:
        if code is None:
            call()
            continue
        with pytest.raises(ClientError) as refused:
            call()
        assert code_of(refused) == code
