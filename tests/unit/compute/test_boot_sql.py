"""A boot's written-out statements (cloud/compute/boot_sql.py) answer and write exactly what the
ORM path does: the same flavor and image, with the same rules, as the same model instances, and
the same instance and action rows."""

from __future__ import annotations

import itertools

import pytest
from django.db import connection

from cloud.compute import boot_sql, flavors
from cloud.compute.models import Flavor, FlavorAccess, Instance, InstanceAction
from cloud.identity.context import RequestContext
from cloud.images.models import Image, ImageMember
from cloud.images.visibility import visible_image
from tests.factories import V, boot

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's statements"),
]

ME, OTHER = "p-mine", "p-other"


def _ctx(project: str | None, admin: bool = False) -> RequestContext:
    return RequestContext(user_id="u", user_name="u", project_id=project, project_name=project,
                          roles=("admin",) if admin else ("member",))


CALLERS = [_ctx(ME), _ctx(OTHER), _ctx(ME, admin=True), _ctx(None)]


def _fields(obj: object) -> dict:
    return {f.attname: getattr(obj, f.attname) for f in type(obj)._meta.concrete_fields}


@pytest.fixture
def projects(db):
    from cloud.identity.models import Project

    return {p: Project.objects.create(id=p, name=p) for p in (ME, OTHER)}


def test_the_flavor_and_the_image_are_those_the_orm_path_finds(projects):
    flavor_list = [
        Flavor.objects.create(flavorid="pub", name="pub", vcpus=2, memory_mb=64, root_gb=1,
                              extra_specs={"hw:cpu_policy": "dedicated"}, rxtx_factor=1.5),
        Flavor.objects.create(flavorid="priv", name="priv", vcpus=1, memory_mb=64, root_gb=1,
                              is_public=False, description="private"),
        Flavor.objects.create(flavorid="granted", name="granted", vcpus=1, memory_mb=64,
                              root_gb=1, is_public=False),
    ]
    FlavorAccess.objects.create(flavor=flavor_list[2], project_id=ME)
    images = []
    for visibility, owned_by, membership in itertools.product(
            ["public", "community", "shared", "private"], [ME, OTHER, None],
            [None, "pending", "rejected"]):
        image = Image.objects.create(
            name=f"{visibility}-{owned_by}-{membership}", visibility=visibility, status="active",
            owner=projects.get(owned_by) if owned_by else None, min_ram=64, tags=["a"],
            properties={"hw_disk_bus": "virtio"}, size=10, checksum="c")
        if membership is not None:
            ImageMember.objects.create(image=image, project=projects[ME], status=membership)
        images.append(image)

    refs = [*(f.flavorid for f in flavor_list), "no-such"]
    for ctx, flavorid, image in itertools.product(CALLERS, refs, [*images, None]):
        image_id = image.pk if image is not None else None
        flavor, found = boot_sql.flavor_and_image(ctx, flavorid, image_id)
        expected_flavor = flavors.usable_flavor(ctx, flavorid)
        expected_image = visible_image(ctx, image_id) if image_id else None
        where = (ctx.project_id, ctx.is_admin, flavorid, image and image.name)
        assert (flavor is None) == (expected_flavor is None), where
        assert (found is None) == (expected_image is None), where
        if flavor is not None:
            assert _fields(flavor) == _fields(expected_flavor), where
            assert not flavor._state.adding
        if found is not None:
            assert _fields(found) == _fields(expected_image), where
    assert boot_sql.flavor_and_image(CALLERS[0], "pub", "8c1bd5a6-e3e7-4a37-9f6b-0d9c4ff7cbd4")[1] \
        is None


def _rows(server_id: str) -> tuple[dict, dict]:
    instance = Instance.objects.get(pk=server_id)
    action = InstanceAction.objects.get(instance=instance)
    return _fields(instance), _fields(action)


def test_a_boot_writes_the_rows_the_orm_path_writes(member, api_as, tiny, image, sent,
                                                   monkeypatch):
    api = api_as(member, "2.100")
    body = {"metadata": {"k": "v"}, "user_data": "eA==", "description": "d",
            "accessIPv4": "192.0.2.1", "config_drive": True, "tags": ["t"]}
    written = boot(api, image, version="2.100", **body)
    monkeypatch.setattr(boot_sql, "available", lambda: False)
    by_orm = boot(api, image, version="2.100", **body)
    assert written.status_code == by_orm.status_code == 202, written.content

    instances, actions = zip(_rows(written.json()["server"]["id"]),
                             _rows(by_orm.json()["server"]["id"]), strict=True)
    differ = {"uuid", "reservation_id", "created_at", "updated_at"}
    assert {k: v for k, v in instances[0].items() if k not in differ} == \
        {k: v for k, v in instances[1].items() if k not in differ}
    assert {k: v for k, v in actions[0].items() if k not in ("id", "instance_id", "request_id",
                                                             "start_time", "updated_at")} == \
        {k: v for k, v in actions[1].items() if k not in ("id", "instance_id", "request_id",
                                                          "start_time", "updated_at")}
    assert actions[0]["action"] == "create" and actions[0]["finish_time"] is None
    assert api.get(f"{V}/servers/{written.json()['server']['id']}").status_code == 200


def test_the_rows_written_hold_the_objects_values_to_the_microsecond(member, tiny):
    instance = Instance(display_name="é \" ' \\ vm", project_id=member.project.pk,
                        user_id=member.user.pk, flavor=tiny, flavor_snapshot={"id": "1", "n": [1]},
                        vcpus=1, memory_mb=128, root_gb=1, metadata={"k": "v ü"},
                        user_data=None, scheduler_hints={"group": None}, key_data="ssh-ed25519 A")
    action = InstanceAction(instance=instance, action="create", request_id="req-1",
                            user_id=member.user.pk, project_id=member.project.pk)

    boot_sql.insert_with_action(instance, action)

    assert not instance._state.adding and action.pk is not None
    assert _fields(Instance.objects.get(pk=instance.pk)) == _fields(instance)
    assert _fields(InstanceAction.objects.get(pk=action.pk)) == _fields(action)
