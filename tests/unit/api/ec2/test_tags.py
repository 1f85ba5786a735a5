"""EC2 tags through boto3: CreateTags / DeleteTags / DescribeTags on each kind, stored where the
OpenStack APIs show them (server metadata, volume metadata, image properties) or beside Neutron's
resources, with EC2's limits, ids and refusals."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from cloud.api.ec2 import resources, tags
from cloud.ids import ec2_id
from cloud.volumes.models import Volume
from tests.factories import make_network, make_server

pytestmark = pytest.mark.django_db


def code_of(excinfo) -> str:
    return excinfo.value.response["Error"]["Code"]


def tag_dict(described) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in described}


def test_an_instances_tags_are_its_server_metadata(ec2_as, api_as, member):
    server = make_server(member, metadata={"role": "db"})
    ec2 = ec2_as(member)
    iid = ec2_id("i", server.uuid)
    ec2.create_tags(Resources=[iid], Tags=[{"Key": "Name", "Value": "web-1"},
                                         {"Key": "env", "Value": ""}])
    shown = api_as(member).get(f"/compute/v2.1/servers/{server.uuid}/metadata").json()
    assert shown["metadata"] == {"role": "db", "Name": "web-1", "env": ""}
    described = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [iid]}])["Tags"]
    assert {(t["Key"], t["Value"], t["ResourceType"], t["ResourceId"]) for t in described} == {
        ("role", "db", "instance", iid), ("Name", "web-1", "instance", iid),
        ("env", "", "instance", iid)}

    ec2.delete_tags(Resources=[iid], Tags=[{"Key": "Name", "Value": "not-its-value"},
                                           {"Key": "env"}])
    shown = api_as(member).get(f"/compute/v2.1/servers/{server.uuid}/metadata").json()
    assert shown["metadata"] == {"role": "db", "Name": "web-1"}  # value differs: kept
    ec2.delete_tags(Resources=[iid])  # no Tags: all of them
    shown = api_as(member).get(f"/compute/v2.1/servers/{server.uuid}/metadata").json()
    assert shown["metadata"] == {}


def test_a_volumes_tags_are_its_metadata(ec2_as, api_as, member):
    volume = Volume.objects.create(project=member.project, size=1, status="available")
    vid = ec2_id("vol", volume.pk)
    ec2_as(member).create_tags(Resources=[vid], Tags=[{"Key": "team", "Value": "blue"}])
    shown = api_as(member).get(f"/volume/v3/{member.project.id}/volumes/{volume.pk}").json()
    assert shown["volume"]["metadata"] == {"team": "blue"}
    assert tags.tags_for(resources.VOLUME, [volume.pk]) == {
        str(volume.pk): [{"key": "team", "value": "blue"}]}
    ec2_as(member).delete_tags(Resources=[vid], Tags=[{"Key": "team", "Value": "blue"},
                                                      {"Key": "absent"}])
    shown = api_as(member).get(f"/volume/v3/{member.project.id}/volumes/{volume.pk}").json()
    assert shown["volume"]["metadata"] == {}


def test_a_snapshots_tags_are_its_metadata(ec2_as, api_as, member):
    from cloud.volumes.models import VolumeSnapshot

    volume = Volume.objects.create(project=member.project, size=1, status="available")
    snapshot = VolumeSnapshot.objects.create(project=member.project, volume=volume, size=1,
                                             status="available", metadata={"keep": "1"})
    sid = ec2_id("snap", snapshot.pk)
    ec2 = ec2_as(member)
    ec2.create_tags(Resources=[sid], Tags=[{"Key": "a", "Value": "b"}])
    ec2.delete_tags(Resources=[sid], Tags=[{"Key": "keep", "Value": ""}])  # "" is not "1"
    url = f"/volume/v3/{member.project.id}/snapshots/{snapshot.pk}"
    assert api_as(member).get(url).json()["snapshot"]["metadata"] == {"keep": "1", "a": "b"}
    ec2.delete_tags(Resources=[sid], Tags=[{"Key": "keep"}])
    assert api_as(member).get(url).json()["snapshot"]["metadata"] == {"a": "b"}


def test_an_images_tags_are_prefixed_properties_glance_shows(ec2_as, api_as, member, image):
    aid = ec2_id("ami", image.pk)
    ec2 = ec2_as(member)
    ec2.create_tags(Resources=[aid], Tags=[{"Key": "a/b~c", "Value": "1"},
                                         {"Key": "architecture", "Value": "tag-only"}])
    shown = api_as(member).get(f"/image/v2/images/{image.pk}").json()
    assert shown["ec2_tag:a/b~c"] == "1"
    assert shown["ec2_tag:architecture"] == "tag-only"
    assert "architecture" not in shown  # a tag never sets a property Nova reads
    described = ec2.describe_tags(Filters=[{"Name": "resource-type", "Values": ["image"]}])
    assert tag_dict(described["Tags"]) == {"a/b~c": "1", "architecture": "tag-only"}
    ec2.delete_tags(Resources=[aid], Tags=[{"Key": "a/b~c"}])
    shown = api_as(member).get(f"/image/v2/images/{image.pk}").json()
    assert "ec2_tag:a/b~c" not in shown and shown["ec2_tag:architecture"] == "tag-only"


def test_a_security_groups_tags_are_deleted_with_it(ec2_as, api_as, member):
    made = api_as(member).post("/network/v2.0/security-groups",
                               {"security_group": {"name": "web"}})
    assert made.status_code == 201, made.content
    group_id = made.json()["security_group"]["id"]
    sg = ec2_id("sg", group_id)
    ec2 = ec2_as(member)
    ec2.create_tags(Resources=[sg], Tags=[{"Key": "Name", "Value": "web"}])
    ec2.create_tags(Resources=[sg], Tags=[{"Key": "Name", "Value": "web2"}])  # replaces
    assert tag_dict(ec2.describe_tags()["Tags"]) == {"Name": "web2"}
    assert api_as(member).delete(f"/network/v2.0/security-groups/{group_id}").status_code == 204
    assert ec2.describe_tags()["Tags"] == []
    from cloud.api.models import Ec2Tag

    assert not Ec2Tag.objects.exists()


def test_vpcs_and_subnets_take_tags(ec2_as, member):
    network = make_network("alpha-net", member.project, "10.2.0.0/24")
    subnet = network.subnets.get()
    ec2 = ec2_as(member)
    ec2.create_tags(Resources=[ec2_id("vpc", network.pk), ec2_id("subnet", subnet.pk)],
                    Tags=[{"Key": "tier", "Value": "app"}])
    described = ec2.describe_tags(Filters=[{"Name": "key", "Values": ["tier"]}])["Tags"]
    assert sorted(t["ResourceType"] for t in described) == ["subnet", "vpc"]


def test_describe_tags_pages_and_filters(ec2_as, member):
    ec2 = ec2_as(member)
    ids = [ec2_id("i", make_server(member, name=f"vm{n}").uuid) for n in range(4)]
    ec2.create_tags(Resources=ids, Tags=[{"Key": "k1", "Value": "a"}, {"Key": "k2", "Value": "b"}])
    pages = list(ec2.get_paginator("describe_tags").paginate(PaginationConfig={"PageSize": 5}))
    assert [len(p["Tags"]) for p in pages] == [5, 3]
    got = ec2.describe_tags(Filters=[{"Name": "value", "Values": ["b"]},
                                     {"Name": "resource-id", "Values": ids[:2]}])["Tags"]
    assert sorted(t["ResourceId"] for t in got) == sorted(ids[:2])
    assert {t["Key"] for t in got} == {"k2"}


def test_another_projects_resource_is_the_kinds_not_found(ec2_as, member, other):
    server = make_server(other)
    with pytest.raises(ClientError) as refused:
        ec2_as(member).create_tags(Resources=[ec2_id("i", server.uuid)],
                                   Tags=[{"Key": "a", "Value": "b"}])
    assert code_of(refused) == "InvalidInstanceID.NotFound"
    volume = Volume.objects.create(project=other.project, size=1, status="available")
    with pytest.raises(ClientError) as refused:
        ec2_as(member).delete_tags(Resources=[ec2_id("vol", volume.pk)])
    assert code_of(refused) == "InvalidVolume.NotFound"
    # nor do its tags show in DescribeTags
    ec2_as(other).create_tags(Resources=[ec2_id("i", server.uuid)],
                              Tags=[{"Key": "a", "Value": "b"}])
    assert ec2_as(member).describe_tags()["Tags"] == []


def test_ids_and_tags_ec2_refuses(ec2_as, member):
    ec2 = ec2_as(member)
    iid = ec2_id("i", make_server(member).uuid)
    cases = [
        (["foo-0123"], [{"Key": "a", "Value": "b"}], "InvalidID"),
        ([iid], [{"Key": "aws:name", "Value": "b"}], "InvalidParameterValue"),
        ([iid], [{"Key": "k" * 129, "Value": "b"}], "InvalidParameterValue"),
        ([iid], [{"Key": "k", "Value": "v" * 257}], "InvalidParameterValue"),
        ([iid], [{"Key": f"k{n}", "Value": ""} for n in range(51)], "TagLimitExceeded"),
    ]
    for ids, given, code in cases:
        with pytest.raises(ClientError) as refused:
            ec2.create_tags(Resources=ids, Tags=given)
        assert code_of(refused) == code, (ids, given[0])
    # 50 is the limit: it counts the tags the resource already has
    ec2.create_tags(Resources=[iid], Tags=[{"Key": f"k{n}", "Value": ""} for n in range(50)])
    with pytest.raises(ClientError) as refused:
        ec2.create_tags(Resources=[iid], Tags=[{"Key": "one-more", "Value": ""}])
    assert code_of(refused) == "TagLimitExceeded"


def test_a_reader_cannot_tag(ec2_as, member, reader):
    iid = ec2_id("i", make_server(member).uuid)
    with pytest.raises(ClientError) as refused:
        ec2_as(reader).create_tags(Resources=[iid], Tags=[{"Key": "a", "Value": "b"}])
    assert code_of(refused) == "UnauthorizedOperation"
    assert ec2_as(reader).describe_tags()["Tags"] == []


def test_tags_for_asks_a_fixed_number_of_queries(member):
    servers = [make_server(member, name=f"vm{n}", metadata={"n": str(n)}) for n in range(6)]
    with CaptureQueriesContext(connection) as few:
        found = tags.tags_for(resources.INSTANCE, [s.uuid for s in servers[:2]])
    with CaptureQueriesContext(connection) as many:
        found = tags.tags_for(resources.INSTANCE, [s.uuid for s in servers])
    assert len(few) == len(many) == 1
    assert found[str(servers[5].uuid)] == [{"key": "n", "value": "5"}]


def test_an_elastic_ips_tags_go_with_its_release(ec2_as, member, nets):
    ec2 = ec2_as(member)
    allocation = ec2.allocate_address(Domain="vpc")["AllocationId"]
    ec2.create_tags(Resources=[allocation], Tags=[{"Key": "use", "Value": "lb"}])
    tagged = ec2.describe_tags(Filters=[{"Name": "resource-type", "Values": ["elastic-ip"]}])
    assert [(t["ResourceId"], t["Key"]) for t in tagged["Tags"]] == [(allocation, "use")]
    ec2.release_address(AllocationId=allocation)
    assert ec2.describe_tags()["Tags"] == []


def test_a_dry_run_changes_nothing(ec2_as, api_as, member):
    server = make_server(member)
    ec2 = ec2_as(member)
    iid = ec2_id("i", server.uuid)
    for call in (lambda: ec2.create_tags(Resources=[iid], Tags=[{"Key": "a", "Value": "b"}],
                                         DryRun=True),
                 lambda: ec2.describe_tags(DryRun=True)):
        with pytest.raises(ClientError) as refused:
            call()
        assert code_of(refused) == "DryRunOperation"
    assert api_as(member).get(f"/compute/v2.1/servers/{server.uuid}/metadata").json() == {
        "metadata": {}}


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_tag_writes_cannot_pass_the_limit_together(member, monkeypatch):
    """Each of two writers adds 26 tags to a server with none: one must be refused. Each holds
    at a barrier once it has counted the tags there, so without the row lock both would count
    0 and write (52 tags); with it the second counts only after the first committed."""
    import threading

    from django.db import connection as default_connection

    from cloud.identity.context import RequestContext

    server = make_server(member)
    ctx = RequestContext(user_id=member.user.id, user_name="bob", project_id=member.project.id,
                         project_name="alpha", roles=("member", "reader"), request_id="req-race")
    barrier = threading.Barrier(2)
    counted = tags.tags_for

    def count_then_wait(kind, uuids):
        found = counted(kind, uuids)
        try:
            barrier.wait(timeout=2)
        except threading.BrokenBarrierError:
            pass  # the other writer is waiting for the row: go on alone
        return found

    monkeypatch.setattr(tags, "tags_for", count_then_wait)
    outcomes: list[str] = []

    def write(prefix: str) -> None:
        try:
            tags.set_tags(ctx, resources.INSTANCE, server.uuid,
                          {f"{prefix}{n}": "" for n in range(26)})
            outcomes.append("ok")
        except tags.Ec2Error as exc:
            outcomes.append(exc.code)
        finally:
            default_connection.close()

    writers = [threading.Thread(target=write, args=(p,)) for p in "ab"]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=30)
    server.refresh_from_db()
    assert sorted(outcomes) == ["TagLimitExceeded", "ok"]
    assert len(server.metadata) == 26
