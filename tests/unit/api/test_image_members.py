"""Sharing images between projects (Glance's image members), and image tags, as the personas see
them through the API."""

from __future__ import annotations

import json
import uuid

import pytest

from cloud.identity.tokens import validate
from cloud.images.models import Image, ImageMember
from cloud.images.visibility import visible_images
from tests.personas import make_persona


@pytest.fixture(autouse=True)
def image_dir(settings, tmp_path):
    settings.KUMO_IMAGE_DIR = tmp_path / "images"


def create(api, **body) -> dict:
    body = {"name": "img", "disk_format": "raw", "container_format": "bare", **body}
    response = api.post("/image/v2/images", body)
    assert response.status_code == 201, response.content
    return response.json()


def put(api, path: str, body: dict):
    return api.put(path, body)


def listed(api, query: str = "") -> set[str]:
    response = api.get(f"/image/v2/images{query}")
    assert response.status_code == 200, response.content
    return {i["id"] for i in response.json()["images"]}


def members_path(image_id: str, member: str | None = None) -> str:
    path = f"/image/v2/images/{image_id}/members"
    return f"{path}/{member}" if member else path


def test_owner_shares_and_the_member_sees_it_by_id_then_in_its_list_once_accepted(
    api_as, member, other
):
    owner, consumer = api_as(member), api_as(other)
    image = create(owner)
    assert image["visibility"] == "shared"
    assert consumer.get(f"/image/v2/images/{image['id']}").status_code == 404

    added = owner.post(members_path(image["id"]), {"member": other.project.id})
    assert added.status_code == 200, added.content
    body = added.json()
    assert body["member_id"] == other.project.id
    assert body["image_id"] == image["id"]
    assert body["status"] == "pending"
    assert body["schema"] == "/v2/schemas/member"
    assert {"created_at", "updated_at"} <= set(body)

    # Pending: visible by id, not in the default list, listed when asking for pending ones.
    assert consumer.get(f"/image/v2/images/{image['id']}").status_code == 200
    assert image["id"] not in listed(consumer)
    assert listed(consumer, "?visibility=shared&member_status=pending") == {image["id"]}
    assert listed(consumer, "?member_status=all") == {image["id"]}

    accepted = put(consumer, members_path(image["id"], other.project.id), {"status": "accepted"})
    assert accepted.status_code == 200, accepted.content
    assert accepted.json()["status"] == "accepted"
    assert image["id"] in listed(consumer)
    assert listed(consumer, "?visibility=shared") == {image["id"]}
    assert listed(consumer, "?member_status=pending&visibility=shared") == set()

    rejected = put(consumer, members_path(image["id"], other.project.id), {"status": "rejected"})
    assert rejected.json()["status"] == "rejected"
    assert image["id"] not in listed(consumer)
    assert consumer.get(f"/image/v2/images/{image['id']}").status_code == 200
    assert listed(consumer, "?member_status=rejected") == {image["id"]}


def test_owner_lists_every_member_and_a_member_sees_only_its_own(api_as, member, other, reader):
    third = make_persona("trent", "gamma", ["member", "reader"])
    owner = api_as(member)
    image = create(owner)
    for project in (other.project, third.project):
        assert owner.post(members_path(image["id"]), {"member": project.id}).status_code == 200

    everyone = api_as(reader).get(members_path(image["id"])).json()
    assert everyone["schema"] == "/v2/schemas/members"
    assert {m["member_id"] for m in everyone["members"]} == {other.project.id, third.project.id}
    own = api_as(other).get(members_path(image["id"])).json()["members"]
    assert [m["member_id"] for m in own] == [other.project.id]
    # A member cannot look at another member's membership.
    assert api_as(other).get(members_path(image["id"], third.project.id)).status_code == 404
    shown = api_as(other).get(members_path(image["id"], other.project.id))
    assert shown.status_code == 200 and shown.json()["status"] == "pending"


def test_the_owner_cannot_answer_for_the_member(api_as, member, other):
    owner = api_as(member)
    image = create(owner)
    owner.post(members_path(image["id"]), {"member": other.project.id})
    refused = put(owner, members_path(image["id"], other.project.id), {"status": "accepted"})
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == 403
    assert ImageMember.objects.get(image_id=image["id"]).status == "pending"
    assert image["id"] not in listed(api_as(other))


def test_an_unknown_status_is_400(api_as, member, other):
    image = create(api_as(member))
    api_as(member).post(members_path(image["id"]), {"member": other.project.id})
    response = put(api_as(other), members_path(image["id"], other.project.id),
                   {"status": "notavalidstatus"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == 400


def test_only_the_owner_adds_or_removes_members(api_as, member, other, reader):
    third = make_persona("trent", "gamma", ["member", "reader"])
    image = create(api_as(member))
    api_as(member).post(members_path(image["id"]), {"member": other.project.id})
    # The member sees the image but may neither add others nor remove itself.
    assert api_as(other).post(members_path(image["id"]), {"member": third.project.id}
                              ).status_code == 403
    assert api_as(other).delete(members_path(image["id"], other.project.id)).status_code == 403
    # The owner's reader may look but not change.
    assert api_as(reader).post(members_path(image["id"]), {"member": third.project.id}
                               ).status_code == 403
    # Someone who cannot see the image learns nothing about it.
    assert api_as(third).post(members_path(image["id"]), {"member": third.project.id}
                              ).status_code == 404
    assert api_as(third).get(members_path(image["id"])).status_code == 404

    assert api_as(member).delete(members_path(image["id"], other.project.id)).status_code == 204
    assert api_as(other).get(f"/image/v2/images/{image['id']}").status_code == 404
    assert api_as(member).delete(members_path(image["id"], other.project.id)).status_code == 404


def test_only_shared_images_take_members(api_as, member, other):
    private = create(api_as(member), visibility="private")
    response = api_as(member).post(members_path(private["id"]), {"member": other.project.id})
    assert response.status_code == 403
    assert "shared" in response.json()["error"]["message"]


def test_making_a_shared_image_private_takes_it_back_from_its_members(api_as, member, other):
    owner = api_as(member)
    image = create(owner)
    owner.post(members_path(image["id"]), {"member": other.project.id})
    put(api_as(other), members_path(image["id"], other.project.id), {"status": "accepted"})
    response = owner.client.patch(
        f"/image/v2/images/{image['id']}",
        data=json.dumps([{"op": "replace", "path": "/visibility", "value": "private"}]),
        content_type="application/openstack-images-v2.1-json-patch", **owner._headers(None),
    )
    assert response.status_code == 200, response.content
    assert api_as(other).get(f"/image/v2/images/{image['id']}").status_code == 404
    assert image["id"] not in listed(api_as(other), "?member_status=all")


def test_duplicate_member_is_409_and_unknown_project_400(api_as, member, other):
    image = create(api_as(member))
    assert api_as(member).post(members_path(image["id"]), {"member": other.project.id}
                               ).status_code == 200
    again = api_as(member).post(members_path(image["id"]), {"member": other.project.id})
    assert again.status_code == 409
    unknown = api_as(member).post(members_path(image["id"]), {"member": "no-such-project"})
    assert unknown.status_code == 400
    assert api_as(member).post(members_path(image["id"]), {"who": "x"}).status_code == 400
    assert ImageMember.objects.count() == 1


def test_a_shared_image_boots_for_the_member_by_id(api_as, member, other):
    """What Nova checks: the image is visible to the member's project."""
    image = create(api_as(member))
    api_as(member).post(members_path(image["id"]), {"member": other.project.id})
    ctx = validate(other.token)
    assert visible_images(ctx).filter(pk=image["id"]).exists()


def test_the_member_and_members_schemas(api_as, reader):
    api = api_as(reader)
    assert api.get("/image/v2/schemas/member").json()["name"] == "member"
    members = api.get("/image/v2/schemas/members").json()
    assert members["name"] == "members"
    assert members["properties"]["members"]["items"]["name"] == "member"


# --- tags


def test_tags_are_added_once_and_removed(api_as, member, reader):
    api = api_as(member)
    image = create(api, visibility="private")
    path = f"/image/v2/images/{image['id']}/tags"
    assert api.put(f"{path}/blue").status_code == 204
    assert api.put(f"{path}/blue").status_code == 204
    assert api.put(f"{path}/green").status_code == 204
    assert api_as(reader).get(f"/image/v2/images/{image['id']}").json()["tags"] == [
        "blue", "green"]
    assert listed(api, "?tag=green") == {image["id"]}
    assert api.delete(f"{path}/blue").status_code == 204
    assert Image.objects.get(pk=image["id"]).tags == ["green"]
    missing = api.delete(f"{path}/blue")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == 404


def test_tags_of_an_image_that_is_not_there_or_not_yours(api_as, member, reader, other):
    assert api_as(member).put(f"/image/v2/images/{uuid.uuid4()}/tags/x").status_code == 404
    image = create(api_as(member), visibility="private")
    assert api_as(reader).put(f"/image/v2/images/{image['id']}/tags/x").status_code == 403
    assert api_as(other).put(f"/image/v2/images/{image['id']}/tags/x").status_code == 404
    assert Image.objects.get(pk=image["id"]).tags == []


def test_a_tag_too_long_is_400_and_too_many_413(api_as, member):
    api = api_as(member)
    image = create(api, tags=[f"t{i}" for i in range(128)])
    assert api.put(f"/image/v2/images/{image['id']}/tags/{'x' * 256}").status_code == 400
    assert api.put(f"/image/v2/images/{image['id']}/tags/one-more").status_code == 413
    assert len(Image.objects.get(pk=image["id"]).tags) == 128
