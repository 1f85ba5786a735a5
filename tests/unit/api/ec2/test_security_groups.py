"""Security groups through boto3: create, describe with filters, authorize and revoke in both
directions (IpPermissions and the old flat form), the duplicates and missing rules EC2 names,
delete (in use, the default group), and another project's group as missing. What the EC2 API
does is checked against what Neutron's API shows of the same group."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from cloud.ids import ec2_id
from cloud.network.models import SecurityGroup
from tests.factories import give_address, make_server

pytestmark = pytest.mark.django_db


def code_of(excinfo) -> str:
    return excinfo.value.response["Error"]["Code"]


def _neutron_rules(api, group_id: str) -> list[dict]:
    response = api.get(f"/network/v2.0/security-group-rules?security_group_id={group_id}")
    assert response.status_code == 200, response.content
    return response.json()["security_group_rules"]


def _uuid_of(ec2_group_id: str) -> str:
    return str(next(g.pk for g in SecurityGroup.objects.all()
                    if ec2_id("sg", g.pk) == ec2_group_id))


def test_create_describe_and_rules_are_neutrons_groups(ec2_as, member, api_as):
    ec2 = ec2_as(member)
    made = ec2.create_security_group(
        GroupName="web", Description="web servers",
        TagSpecifications=[{"ResourceType": "security-group",
                            "Tags": [{"Key": "tier", "Value": "front"}]}])
    group_id = made["GroupId"]
    assert group_id.startswith("sg-") and len(group_id) == 20
    assert made["Tags"] == [{"Key": "tier", "Value": "front"}]

    ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
         "IpRanges": [{"CidrIp": "192.0.2.0/24", "Description": "office"}]},
        {"IpProtocol": "icmp", "FromPort": -1, "ToPort": -1,
         "Ipv6Ranges": [{"CidrIpv6": "2001:db8::/32"}]},
    ])
    # the old flat form
    answer = ec2.authorize_security_group_ingress(GroupName="web", IpProtocol="udp",
                                                  FromPort=53, ToPort=53, CidrIp="10.0.0.0/8")
    assert answer["Return"] is True
    [rule] = answer["SecurityGroupRules"]
    assert (rule["IpProtocol"], rule["FromPort"], rule["ToPort"], rule["CidrIpv4"],
            rule["IsEgress"], rule["GroupId"]) == ("udp", 53, 53, "10.0.0.0/8", False, group_id)

    [group] = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"]
    assert (group["GroupName"], group["Description"]) == ("web", "web servers")
    assert group["Tags"] == [{"Key": "tier", "Value": "front"}]
    ingress = {p["IpProtocol"]: p for p in group["IpPermissions"]}
    assert ingress["tcp"]["FromPort"] == 22 and ingress["tcp"]["ToPort"] == 22
    assert ingress["tcp"]["IpRanges"] == [{"CidrIp": "192.0.2.0/24", "Description": "office"}]
    assert ingress["udp"]["IpRanges"] == [{"CidrIp": "10.0.0.0/8"}]
    assert ingress["icmpv6"]["Ipv6Ranges"] == [{"CidrIpv6": "2001:db8::/32"}]
    # a new group lets everything out, as in EC2 (Neutron's two egress rules)
    egress = group["IpPermissionsEgress"]
    assert [(p["IpProtocol"], p.get("IpRanges"), p.get("Ipv6Ranges")) for p in egress] == [
        ("-1", [{"CidrIp": "0.0.0.0/0"}], [{"CidrIpv6": "::/0"}])]

    # Neutron's API shows the same rules on the same group
    neutron = _neutron_rules(api_as(member), _uuid_of(group_id))
    ssh = [r for r in neutron if r["protocol"] == "tcp"]
    assert [(r["direction"], r["port_range_min"], r["port_range_max"], r["remote_ip_prefix"],
             r["description"]) for r in ssh] == [("ingress", 22, 22, "192.0.2.0/24", "office")]


def test_a_group_may_let_another_group_in(ec2_as, member):
    ec2 = ec2_as(member)
    web = ec2.create_security_group(GroupName="web", Description="w")["GroupId"]
    db = ec2.create_security_group(GroupName="db", Description="d")["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=db, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432,
        "UserIdGroupPairs": [{"GroupId": web}]}])
    [group] = ec2.describe_security_groups(GroupIds=[db])["SecurityGroups"]
    [perm] = group["IpPermissions"]
    assert [p["GroupId"] for p in perm["UserIdGroupPairs"]] == [web]
    found = ec2.describe_security_groups(Filters=[
        {"Name": "ip-permission.group-id", "Values": [web]}])["SecurityGroups"]
    assert [g["GroupId"] for g in found] == [db]
    with pytest.raises(ClientError) as refused:
        ec2.authorize_security_group_ingress(GroupId=db, IpPermissions=[{
            "IpProtocol": "tcp", "FromPort": 1, "ToPort": 2,
            "UserIdGroupPairs": [{"GroupId": "sg-00000000000000000"}]}])
    assert code_of(refused) == "InvalidGroup.NotFound"


def test_duplicates_and_missing_rules_are_ec2s_errors(ec2_as, member):
    ec2 = ec2_as(member)
    group_id = ec2.create_security_group(GroupName="g", Description="g")["GroupId"]
    ssh = [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
            "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=ssh)
    with pytest.raises(ClientError) as twice:  # (another key: a replayed request is refused)
        ec2_as(member).authorize_security_group_ingress(GroupId=group_id, IpPermissions=ssh)
    assert code_of(twice) == "InvalidPermission.Duplicate"
    # the egress rule every group starts with is there already
    with pytest.raises(ClientError) as again:
        ec2.authorize_security_group_egress(GroupId=group_id, IpPermissions=[
            {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    assert code_of(again) == "InvalidPermission.Duplicate"

    revoked = ec2.revoke_security_group_ingress(GroupId=group_id, IpPermissions=ssh)
    assert revoked["Return"] is True
    with pytest.raises(ClientError) as gone:
        ec2_as(member).revoke_security_group_ingress(GroupId=group_id, IpPermissions=ssh)
    assert code_of(gone) == "InvalidPermission.NotFound"
    [group] = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"]
    assert group["IpPermissions"] == []

    # revoking the default egress: the group lets nothing out any more
    ec2.revoke_security_group_egress(GroupId=group_id, IpPermissions=[
        {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
         "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}])
    [group] = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"]
    assert group["IpPermissionsEgress"] == []


@pytest.mark.parametrize("permission, code", [
    ({"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
      "IpRanges": [{"CidrIp": "not-a-cidr"}]}, "InvalidParameterValue"),
    ({"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
      "IpRanges": [{"CidrIp": "2001:db8::/32"}]}, "InvalidParameterValue"),
    ({"IpProtocol": "bogus", "FromPort": 22, "ToPort": 22,
      "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}, "InvalidParameterValue"),
    ({"IpProtocol": "tcp", "FromPort": 30, "ToPort": 20,
      "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}, "InvalidParameterValue"),
    ({"IpProtocol": "tcp", "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}, "MissingParameter"),
    ({"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22}, "MissingParameter"),
])
def test_bad_permissions_are_refused_and_nothing_is_added(ec2_as, member, permission, code):
    ec2 = ec2_as(member)
    group_id = ec2.create_security_group(GroupName="g", Description="g")["GroupId"]
    good = {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80,
            "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}
    with pytest.raises(ClientError) as refused:
        ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[good, permission])
    assert code_of(refused) == code
    [group] = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"]
    assert group["IpPermissions"] == []  # all of the request or none of it


def test_describe_filters_and_the_default_group(ec2_as, member, nets):
    ec2 = ec2_as(member)
    ec2.create_security_group(GroupName="web", Description="web servers")
    ec2.create_security_group(GroupName="db", Description="databases")
    names = {g["GroupName"] for g in ec2.describe_security_groups()["SecurityGroups"]}
    assert names == {"default", "web", "db"}
    by_name = ec2.describe_security_groups(GroupNames=["db"])["SecurityGroups"]
    assert [g["Description"] for g in by_name] == ["databases"]
    wild = ec2.describe_security_groups(Filters=[{"Name": "description",
                                                  "Values": ["web*"]}])["SecurityGroups"]
    assert [g["GroupName"] for g in wild] == ["web"]
    # scripts find "the default group of this VPC"
    vpc_id = ec2_id("vpc", nets["alpha"].pk)
    default = ec2.describe_security_groups(Filters=[
        {"Name": "vpc-id", "Values": [vpc_id]},
        {"Name": "group-name", "Values": ["default"]}])["SecurityGroups"]
    assert [g["GroupName"] for g in default] == ["default"]
    [default_group] = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"]
    [from_itself] = default_group["IpPermissions"]  # Neutron's two rules, one EC2 pair
    assert (from_itself["IpProtocol"], [p["GroupId"] for p in from_itself["UserIdGroupPairs"]]) \
        == ("-1", [default_group["GroupId"]])
    with pytest.raises(ClientError) as unknown:
        ec2.describe_security_groups(GroupNames=["nope"])
    assert code_of(unknown) == "InvalidGroup.NotFound"
    with pytest.raises(ClientError) as bad_filter:
        ec2.describe_security_groups(Filters=[{"Name": "colour", "Values": ["red"]}])
    assert code_of(bad_filter) == "InvalidParameterValue"


def test_delete_refuses_the_default_group_and_one_in_use(ec2_as, member):
    ec2 = ec2_as(member)
    [default] = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"]
    with pytest.raises(ClientError) as refused:
        ec2.delete_security_group(GroupId=default["GroupId"])
    assert code_of(refused) == "CannotDelete"

    group_id = ec2.create_security_group(GroupName="used", Description="u")["GroupId"]
    port = give_address(make_server(member))
    port.security_groups.add(SecurityGroup.objects.get(pk=_uuid_of(group_id)))
    with pytest.raises(ClientError) as in_use:
        ec2.delete_security_group(GroupId=group_id)
    assert code_of(in_use) == "DependencyViolation"
    port.security_groups.clear()
    ec2.delete_security_group(GroupName="used")
    with pytest.raises(ClientError) as gone:
        ec2.describe_security_groups(GroupIds=[group_id])
    assert code_of(gone) == "InvalidGroup.NotFound"


def test_a_duplicate_name_and_bad_names_are_refused(ec2_as, member):
    ec2 = ec2_as(member)
    ec2.create_security_group(GroupName="web", Description="w")
    for name in ("web", "default"):
        with pytest.raises(ClientError) as twice:
            ec2_as(member).create_security_group(GroupName=name, Description="w")
        assert code_of(twice) == "InvalidGroup.Duplicate"
    with pytest.raises(ClientError) as bad:
        ec2.create_security_group(GroupName="sg-mine", Description="w")
    assert code_of(bad) == "InvalidParameterValue"
    with pytest.raises(ClientError) as vpc:
        ec2.create_security_group(GroupName="x", Description="w", VpcId="vpc-00000000000000000")
    assert code_of(vpc) == "InvalidVpcID.NotFound"


def test_another_projects_group_is_missing_and_a_reader_may_only_look(ec2_as, member, other,
                                                                        reader):
    group_id = ec2_as(member).create_security_group(GroupName="mine",
                                                    Description="m")["GroupId"]
    stranger = ec2_as(other)
    with pytest.raises(ClientError) as hidden:
        stranger.describe_security_groups(GroupIds=[group_id])
    assert code_of(hidden) == "InvalidGroup.NotFound"
    for call in (lambda: stranger.delete_security_group(GroupId=group_id),
                 lambda: stranger.authorize_security_group_ingress(
                     GroupId=group_id, IpProtocol="tcp", FromPort=1, ToPort=1,
                     CidrIp="10.0.0.0/8")):
        with pytest.raises(ClientError) as refused:
            call()
        assert code_of(refused) == "InvalidGroup.NotFound"
    assert group_id not in {g["GroupId"] for g in
                            stranger.describe_security_groups()["SecurityGroups"]}
    looker = ec2_as(reader)
    assert group_id in {g["GroupId"] for g in looker.describe_security_groups()["SecurityGroups"]}
    with pytest.raises(ClientError) as denied:
        looker.create_security_group(GroupName="r", Description="r")
    assert code_of(denied) == "UnauthorizedOperation"


def test_dry_run_checks_and_changes_nothing(ec2_as, member):
    ec2 = ec2_as(member)
    with pytest.raises(ClientError) as dry:
        ec2.create_security_group(GroupName="x", Description="x", DryRun=True)
    assert code_of(dry) == "DryRunOperation"
    group_id = ec2.create_security_group(GroupName="g", Description="g")["GroupId"]
    with pytest.raises(ClientError) as dry:
        ec2.authorize_security_group_ingress(GroupId=group_id, IpProtocol="tcp", FromPort=22,
                                             ToPort=22, CidrIp="10.0.0.0/8", DryRun=True)
    assert code_of(dry) == "DryRunOperation"
    names = {g["GroupName"]: g for g in ec2.describe_security_groups()["SecurityGroups"]}
    assert set(names) == {"default", "g"} and names["g"]["IpPermissions"] == []


def test_describing_more_groups_costs_no_more_queries(ec2_as, member):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    ec2 = ec2_as(member)
    ec2.describe_security_groups()  # the default group made, the credential cached

    def queries() -> int:
        with CaptureQueriesContext(connection) as seen:
            ec2.describe_security_groups()
        return len(seen.captured_queries)

    few = queries()
    for n in range(4):
        group_id = ec2.create_security_group(GroupName=f"g{n}", Description="g")["GroupId"]
        ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[{
            "IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
            "UserIdGroupPairs": [{"GroupId": group_id}]}])
    assert queries() == few


def test_rules_one_by_one_and_revoked_by_their_ids(ec2_as, member, other):
    ec2 = ec2_as(member)
    group_id = ec2.create_security_group(GroupName="g", Description="g")["GroupId"]
    made = ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
         "IpRanges": [{"CidrIp": "0.0.0.0/0"}], "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}])
    ids = {r["SecurityGroupRuleId"] for r in made["SecurityGroupRules"]}
    assert len(ids) == 2 and all(i.startswith("sgr-") for i in ids)
    rules = ec2.describe_security_group_rules(Filters=[
        {"Name": "group-id", "Values": [group_id]}])["SecurityGroupRules"]
    assert {r["SecurityGroupRuleId"] for r in rules if not r["IsEgress"]} == ids
    assert len([r for r in rules if r["IsEgress"]]) == 2  # the two a new group starts with
    one = min(ids)
    [shown] = ec2.describe_security_group_rules(SecurityGroupRuleIds=[one])["SecurityGroupRules"]
    assert (shown["IpProtocol"], shown["FromPort"], shown["ToPort"]) == ("tcp", 443, 443)
    with pytest.raises(ClientError) as hidden:
        ec2_as(other).describe_security_group_rules(SecurityGroupRuleIds=[one])
    assert code_of(hidden) == "InvalidSecurityGroupRuleId.NotFound"

    ec2.revoke_security_group_ingress(GroupId=group_id, SecurityGroupRuleIds=[one])
    left = ec2.describe_security_group_rules(Filters=[
        {"Name": "group-id", "Values": [group_id]}])["SecurityGroupRules"]
    assert one not in {r["SecurityGroupRuleId"] for r in left}
    assert (ids - {one}) <= {r["SecurityGroupRuleId"] for r in left}
