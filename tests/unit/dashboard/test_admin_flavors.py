"""The flavor pages: a whole flavor created at once, edited in place where Nova allows it, and
replaced (same id, specs and access kept) where it does not."""

from __future__ import annotations

import html

import pytest

from cloud.compute.models import Flavor, FlavorAccess
from cloud.identity.models import Project
from tests.factories import make_server

from .conftest import signed_in

pytestmark = pytest.mark.django_db


def _fields(**changes):
    values = {"name": "m1.web", "flavorid": "", "vcpus": "2", "ram": "2048", "disk": "20",
              "ephemeral": "5", "swap": "512", "is_public": "on", "description": "",
              "extra_specs": ""}
    values.update(changes)
    return {k: v for k, v in values.items() if v is not None}


def test_an_admin_creates_a_private_flavor_with_everything_nova_has(admin, member, other):
    response = signed_in(admin).post("/manage/flavors/", _fields(
        flavorid="web", is_public=None, description="for the web tier",
        extra_specs="hw:cpu_policy=dedicated\n\nquota:disk_read_iops_sec = 500\n",
        projects=[member.project.pk]))
    assert response.status_code == 302
    flavor = Flavor.objects.get(flavorid="web")
    assert (flavor.vcpus, flavor.memory_mb, flavor.root_gb, flavor.ephemeral_gb, flavor.swap) == (
        2, 2048, 20, 5, 512)
    assert not flavor.is_public and flavor.description == "for the web tier"
    assert flavor.extra_specs == {"hw:cpu_policy": "dedicated", "quota:disk_read_iops_sec": "500"}
    assert list(FlavorAccess.objects.values_list("project_id", flat=True)) == [member.project.pk]
    page = signed_in(admin).get("/manage/flavors/").content.decode()
    assert "private: alpha" in page and "hw:cpu_policy=dedicated" in page


def test_the_form_refuses_bad_specs_and_projects_on_a_public_flavor(admin, member):
    client = signed_in(admin)
    bad = client.post("/manage/flavors/", _fields(extra_specs="no equals sign"))
    assert bad.status_code == 400 and "Line 1: write key=value" in bad.content.decode()
    public = client.post("/manage/flavors/", _fields(projects=[member.project.pk]))
    assert public.status_code == 400 and "untick Public" in public.content.decode()
    assert not Flavor.objects.filter(name="m1.web").exists()


def test_editing_the_description_specs_and_access_changes_the_flavor_in_place(admin, member,
                                                                              other):
    flavor = Flavor.objects.create(flavorid="p1", name="m1.private", vcpus=1, memory_mb=512,
                                   root_gb=1, is_public=False, extra_specs={"old": "1"})
    FlavorAccess.objects.create(flavor=flavor, project_id=member.project.pk)
    client = signed_in(admin)
    form = client.get("/manage/flavors/p1/edit").content.decode()
    assert "deletes this flavor and creates a new one with the same ID" in form
    assert "old=1" in form
    response = client.post("/manage/flavors/p1/edit", _fields(
        name="m1.private", vcpus="1", ram="512", disk="1", ephemeral="0", swap="0",
        is_public=None, description="now described", extra_specs="new=2",
        projects=[other.project.pk]), follow=True)
    assert "updated in place" in response.content.decode()
    same = Flavor.objects.get(flavorid="p1")
    assert same.pk == flavor.pk  # the same row: nothing was replaced
    assert same.description == "now described" and same.extra_specs == {"new": "2"}
    assert list(FlavorAccess.objects.filter(flavor=same).values_list("project_id", flat=True)
                ) == [other.project.pk]


def test_changing_a_size_replaces_the_flavor_under_the_same_id(admin, member):
    flavor = Flavor.objects.create(flavorid="42", name="m1.old", vcpus=1, memory_mb=512,
                                   root_gb=1, is_public=False, extra_specs={"k": "v"},
                                   description="kept")
    FlavorAccess.objects.create(flavor=flavor, project_id=member.project.pk)
    server = make_server(member, "vm1", flavor=flavor)
    response = signed_in(admin).post("/manage/flavors/42/edit", _fields(
        name="m1.new", vcpus="4", ram="512", disk="1", ephemeral="0", swap="0", is_public=None,
        description="kept", extra_specs="k=v", projects=[member.project.pk]), follow=True)
    said = html.unescape(response.content.decode())
    assert "replaced: Nova flavors cannot change name, vcpus" in said
    new = Flavor.objects.get(flavorid="42")
    assert new.pk != flavor.pk and (new.name, new.vcpus) == ("m1.new", 4)
    assert new.extra_specs == {"k": "v"} and new.description == "kept" and not new.is_public
    assert list(FlavorAccess.objects.filter(flavor=new).values_list("project_id", flat=True)
                ) == [member.project.pk]
    server.refresh_from_db()
    assert server.vcpus == 1 and server.flavor_snapshot["id"] == "1"  # servers keep their size


def test_a_replacement_that_fails_leaves_the_old_flavor(admin):
    Flavor.objects.create(flavorid="a", name="m1.a", vcpus=1, memory_mb=512, root_gb=1)
    Flavor.objects.create(flavorid="b", name="m1.b", vcpus=1, memory_mb=512, root_gb=1)
    response = signed_in(admin).post("/manage/flavors/a/edit", _fields(
        name="m1.b", vcpus="1", ram="512", disk="1", ephemeral="0", swap="0"))
    assert response.status_code == 400 and "already exists" in response.content.decode()
    assert Flavor.objects.get(flavorid="a").name == "m1.a"


def test_members_cannot_create_or_edit_flavors(member):
    Flavor.objects.create(flavorid="1", name="m1.tiny", vcpus=1, memory_mb=128, root_gb=1)
    client = signed_in(member)
    assert client.get("/manage/flavors/1/edit").status_code == 403
    assert client.post("/manage/flavors/1/edit", _fields(name="m1.tiny", vcpus="64")
                       ).status_code == 403
    assert Flavor.objects.get(flavorid="1").vcpus == 1
    assert not Project.objects.filter(name="m1.web").exists()
