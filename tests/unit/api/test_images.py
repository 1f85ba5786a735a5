"""Glance v2 subset through the HTTP API, as the personas see it."""

from __future__ import annotations

import hashlib
import json
import uuid

import pytest

from cloud import errors
from cloud.identity.context import RequestContext
from cloud.images import images as image_records
from cloud.images.models import Image

DATA = b"kumo image bytes\n" * 4096


@pytest.fixture(autouse=True)
def image_dir(settings, tmp_path):
    settings.KUMO_IMAGE_DIR = tmp_path / "images"
    return settings.KUMO_IMAGE_DIR


def create(api, **body) -> dict:
    body = {"name": "img", "disk_format": "raw", "container_format": "bare", **body}
    response = api.post("/image/v2/images", body)
    assert response.status_code == 201, response.content
    return response.json()


def upload(api, image_id: str, data: bytes = DATA, content_type: str = "application/octet-stream"):
    return api.client.put(
        f"/image/v2/images/{image_id}/file",
        data=data,
        content_type=content_type,
        HTTP_ACCEPT="application/octet-stream",  # what openstacksdk sends
        **api._headers(None),
    )


def patch(api, image_id: str, ops: list):
    return api.client.patch(
        f"/image/v2/images/{image_id}",
        data=json.dumps(ops),
        content_type="application/openstack-images-v2.1-json-patch",
        **api._headers(None),
    )


def leftovers(image_dir) -> list:
    return list(image_dir.iterdir()) if image_dir.exists() else []


def download_bytes(response) -> bytes:
    return b"".join(response.streaming_content)


def test_discovery_needs_no_token(api_as, db):
    anonymous = api_as(None)
    root = anonymous.get("/image")
    assert root.status_code == 300
    versions = root.json()["versions"]
    current = [v for v in versions if v["status"] == "CURRENT"]
    assert [v["id"] for v in current] == ["v2.16"]
    assert current[0]["links"][0]["href"].endswith("/image/v2/")
    v2 = anonymous.get("/image/v2")
    assert v2.status_code == 200
    assert v2.json()["versions"] == versions


def test_listing_needs_a_token(api_as, db):
    response = api_as(None).get("/image/v2/images")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == 401


def test_create_upload_download_delete(
    api_as, member, image_dir, django_capture_on_commit_callbacks
):
    api = api_as(member)
    image = create(api, name="cirros")
    assert image["status"] == "queued"
    assert image["visibility"] == "shared"
    assert image["owner"] == member.project.id
    assert image["size"] is None and image["checksum"] is None
    assert image["self"] == f"/v2/images/{image['id']}"
    assert image["file"] == f"/v2/images/{image['id']}/file"
    assert image["schema"] == "/v2/schemas/image"

    assert upload(api, image["id"]).status_code == 204

    shown = api.get(f"/image/v2/images/{image['id']}").json()
    assert shown["status"] == "active"
    assert shown["size"] == len(DATA)
    assert shown["checksum"] == hashlib.md5(DATA).hexdigest()
    assert shown["os_hash_algo"] == "sha512"
    assert shown["os_hash_value"] == hashlib.sha512(DATA).hexdigest()

    got = api.get(f"/image/v2/images/{image['id']}/file", HTTP_ACCEPT="application/octet-stream")
    assert got.status_code == 200
    assert got["Content-Type"] == "application/octet-stream"
    assert got["Content-MD5"] == shown["checksum"]
    assert download_bytes(got) == DATA
    assert (image_dir / image["id"]).is_file()

    with django_capture_on_commit_callbacks(execute=True):
        assert api.delete(f"/image/v2/images/{image['id']}").status_code == 204
    assert api.get(f"/image/v2/images/{image['id']}").status_code == 404
    assert not (image_dir / image["id"]).exists()


def test_download_of_image_without_data_is_204(api_as, member):
    api = api_as(member)
    image = create(api)
    assert api.get(f"/image/v2/images/{image['id']}/file").status_code == 204


@pytest.mark.parametrize(
    "method, suffix", [("get", ""), ("delete", ""), ("get", "/file"), ("put", "/file")]
)
def test_non_uuid_id_is_404_in_glance_shape(api_as, member, method, suffix):
    api = api_as(member)
    path = f"/image/v2/images/not-a-uuid{suffix}"
    if method == "put":
        response = upload(api, "not-a-uuid")
    else:
        response = getattr(api, method)(path)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == 404


def test_foreign_private_image_is_invisible(api_as, member, other):
    mine = create(api_as(member))
    theirs = api_as(other)
    image_id = mine["id"]
    assert theirs.get(f"/image/v2/images/{image_id}").status_code == 404
    assert theirs.get(f"/image/v2/images/{image_id}/file").status_code == 404
    assert theirs.delete(f"/image/v2/images/{image_id}").status_code == 404
    assert upload(theirs, image_id).status_code == 404
    assert (
        patch(theirs, image_id, [{"op": "replace", "path": "/name", "value": "x"}]).status_code
        == 404
    )
    listed = theirs.get("/image/v2/images").json()["images"]
    assert image_id not in [i["id"] for i in listed]
    assert Image.objects.get(pk=image_id).status == "queued"


def test_public_image_is_visible_but_not_theirs_to_change(api_as, admin, other):
    image = create(api_as(admin), visibility="public")
    theirs = api_as(other)
    assert theirs.get(f"/image/v2/images/{image['id']}").status_code == 200
    assert image["id"] in [i["id"] for i in theirs.get("/image/v2/images").json()["images"]]
    assert theirs.delete(f"/image/v2/images/{image['id']}").status_code == 403
    assert upload(theirs, image["id"]).status_code == 403


def test_admin_sees_every_image(api_as, admin, other):
    image = create(api_as(other), visibility="private")
    assert api_as(admin).get(f"/image/v2/images/{image['id']}").status_code == 200


def test_reader_cannot_create_but_can_list(api_as, reader, member):
    create(api_as(member))
    response = api_as(reader).post("/image/v2/images", {"name": "x"})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == 403
    assert len(api_as(reader).get("/image/v2/images").json()["images"]) == 1


def test_only_admin_makes_public_images(api_as, member, admin):
    response = api_as(member).post("/image/v2/images", {"name": "x", "visibility": "public"})
    assert response.status_code == 403
    assert create(api_as(admin), visibility="public")["visibility"] == "public"


def test_malformed_json_is_400_in_glance_shape(api_as, member):
    response = api_as(member).post("/image/v2/images", raw="{not json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == 400


@pytest.mark.parametrize(
    "body, status",
    [
        ({"status": "active"}, 403),
        ({"size": 12}, 403),
        ({"checksum": "abc"}, 403),
        ({"os_glance_foo": "x"}, 403),
        ({"disk_format": "floppy"}, 400),
        ({"min_ram": -1}, 400),
        ({"visibility": "everyone"}, 400),
        ({"custom": 12}, 400),
        ({"id": "nope"}, 400),
    ],
)
def test_bad_create_bodies(api_as, member, body, status):
    response = api_as(member).post("/image/v2/images", body)
    assert response.status_code == status, response.content
    assert "error" in response.json()


def test_read_only_message(api_as, member):
    response = api_as(member).post("/image/v2/images", {"status": "active"})
    assert response.json()["error"]["message"] == "Attribute 'status' is read-only."


def test_create_with_chosen_id_and_duplicate(api_as, member):
    chosen = str(uuid.uuid4())
    api = api_as(member)
    assert create(api, id=chosen)["id"] == chosen
    assert api.post("/image/v2/images", {"id": chosen}).status_code == 409


def test_extra_properties_are_echoed_and_filterable(api_as, member):
    api = api_as(member)
    props = {
        "owner_specified.openstack.md5": "",
        "owner_specified.openstack.sha256": "",
        "owner_specified.openstack.object": "images/img1",
    }
    image = create(api, name="img1", **props)
    for key, value in props.items():
        assert image[key] == value
    create(api, name="img2")
    shown = api.get(f"/image/v2/images/{image['id']}").json()
    assert shown["owner_specified.openstack.object"] == "images/img1"
    listed = api.get("/image/v2/images?owner_specified.openstack.object=images/img1").json()
    assert [i["id"] for i in listed["images"]] == [image["id"]]


def test_upload_twice_is_409(api_as, member):
    api = api_as(member)
    image = create(api)
    assert upload(api, image["id"]).status_code == 204
    response = upload(api, image["id"], b"other bytes")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == 409


def test_upload_needs_formats(api_as, member):
    api = api_as(member)
    image = create(api, disk_format=None, container_format=None)
    assert upload(api, image["id"]).status_code == 400


def test_upload_rejects_other_content_types(api_as, member):
    api = api_as(member)
    image = create(api)
    assert upload(api, image["id"], content_type="application/json").status_code == 415


def test_reader_cannot_upload(api_as, member, reader):
    image = create(api_as(member))
    assert upload(api_as(reader), image["id"]).status_code == 403


def test_too_large_upload_goes_back_to_queued(api_as, member, settings, image_dir):
    settings.KUMO_IMAGE_MAX_SIZE = 1000
    api = api_as(member)
    image = create(api)
    response = upload(api, image["id"], b"x" * 1001)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == 413
    assert Image.objects.get(pk=image["id"]).status == "queued"
    assert leftovers(image_dir) == []
    assert upload(api, image["id"], b"x" * 1000).status_code == 204


def _ctx(persona) -> RequestContext:
    roles = tuple(
        persona.user.assignments.filter(project=persona.project).values_list(
            "role__name", flat=True
        )
    )
    return RequestContext(
        user_id=persona.user.id,
        user_name=persona.user.name,
        project_id=persona.project.id,
        project_name=persona.project.name,
        roles=roles,
    )


def test_cap_is_enforced_while_streaming(member, settings, image_dir):
    """Without a Content-Length the cap must still stop the upload, not trust the client."""
    settings.KUMO_IMAGE_MAX_SIZE = 10
    ctx = _ctx(member)
    image = image_records.create_image(ctx, {"disk_format": "raw", "container_format": "bare"})
    with pytest.raises(errors.RequestTooLarge):
        image_records.upload_image(ctx, image.id, iter([b"12345", b"67890", b"1"]), None)
    image.refresh_from_db()
    assert image.status == "queued"
    assert leftovers(image_dir) == []


def test_truncated_upload_is_not_activated(member, image_dir):
    ctx = _ctx(member)
    image = image_records.create_image(ctx, {"disk_format": "raw", "container_format": "bare"})
    with pytest.raises(errors.BadRequest):
        image_records.upload_image(ctx, image.id, iter([b"half"]), 8)
    image.refresh_from_db()
    assert image.status == "queued"
    assert leftovers(image_dir) == []


def test_failing_stream_leaves_nothing(member, image_dir):
    def broken():
        yield b"abc"
        raise OSError("connection reset")

    ctx = _ctx(member)
    image = image_records.create_image(ctx, {"disk_format": "raw", "container_format": "bare"})
    with pytest.raises(errors.BadRequest):
        image_records.upload_image(ctx, image.id, broken(), None)
    image.refresh_from_db()
    assert image.status == "queued"
    assert leftovers(image_dir) == []


def test_id_in_filter(api_as, member):
    api = api_as(member)
    a, b, _c = (create(api, name=n) for n in "abc")
    listed = api.get(f"/image/v2/images?id=in:{a['id']},{b['id']},not-a-uuid").json()["images"]
    assert sorted(i["id"] for i in listed) == sorted([a["id"], b["id"]])
    one = api.get(f"/image/v2/images?id={a['id']}").json()["images"]
    assert [i["id"] for i in one] == [a["id"]]


def test_filters(api_as, member, admin, other):
    api = api_as(member)
    queued = create(api, name="q")
    active = create(api, name="a")
    upload(api, active["id"])
    public = create(api_as(admin), name="p", visibility="public")
    foreign = create(api_as(other), name="f", visibility="community")

    def ids(query: str) -> set[str]:
        return {i["id"] for i in api.get(f"/image/v2/images?{query}").json()["images"]}

    assert ids("name=q") == {queued["id"]}
    assert ids("status=active") == {active["id"]}
    assert ids("visibility=public") == {public["id"]}
    # Another project's community image is listed only when asked for, as in Glance.
    assert ids(f"owner={other.project.id}") == set()
    assert ids(f"owner={other.project.id}&visibility=community") == {foreign["id"]}
    assert ids("visibility=all") == {queued["id"], active["id"], public["id"], foreign["id"]}
    assert ids(f"owner={member.project.id}") == {queued["id"], active["id"], public["id"]}
    assert api.get("/image/v2/images?visibility=nope").status_code == 400


def test_pagination_follows_next_links(api_as, member):
    api = api_as(member)
    made = {create(api, name=f"img{i}")["id"] for i in range(5)}
    seen: list[str] = []
    url = "/image/v2/images?limit=2"
    pages = 0
    while url:
        body = api.get(url).json()
        assert body["first"] == "/v2/images"
        assert body["schema"] == "/v2/schemas/images"
        seen += [i["id"] for i in body["images"]]
        pages += 1
        url = "/image" + body["next"] if "next" in body else None
        if url:
            assert body["next"].startswith("/v2/images?")
    assert pages == 3
    assert len(seen) == 5 and set(seen) == made


def test_pagination_by_name_ascending(api_as, member):
    api = api_as(member)
    for name in ["c", "a", "b"]:
        create(api, name=name)
    first = api.get("/image/v2/images?limit=2&sort_key=name&sort_dir=asc").json()
    assert [i["name"] for i in first["images"]] == ["a", "b"]
    assert "sort_key=name" in first["next"]
    rest = api.get("/image" + first["next"]).json()
    assert [i["name"] for i in rest["images"]] == ["c"]
    assert "next" not in rest


def test_bad_marker_is_400(api_as, member):
    api = api_as(member)
    assert api.get(f"/image/v2/images?marker={uuid.uuid4()}").status_code == 400
    assert api.get("/image/v2/images?limit=x").status_code == 400


def test_hidden_images_are_left_out_by_default(api_as, member):
    api = api_as(member)
    hidden = create(api, os_hidden=True)
    assert hidden["id"] not in {i["id"] for i in api.get("/image/v2/images").json()["images"]}
    listed = api.get("/image/v2/images?os_hidden=true").json()["images"]
    assert [i["id"] for i in listed] == [hidden["id"]]


def test_patch(api_as, member):
    api = api_as(member)
    image = create(api, extra="1")
    response = patch(
        api,
        image["id"],
        [
            {"op": "replace", "path": "/name", "value": "renamed"},
            {"op": "add", "path": "/hw_disk_bus", "value": "virtio"},
            {"op": "remove", "path": "/extra"},
            {"op": "replace", "path": "/min_ram", "value": 512},
            {"op": "replace", "path": "/tags", "value": ["a", "b", "a"]},
            {"op": "replace", "path": "/visibility", "value": "community"},
            {"op": "replace", "path": "/protected", "value": True},
        ],
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["name"] == "renamed"
    assert body["hw_disk_bus"] == "virtio"
    assert "extra" not in body
    assert body["min_ram"] == 512
    assert body["tags"] == ["a", "b"]
    assert body["visibility"] == "community"
    assert body["protected"] is True
    assert api.delete(f"/image/v2/images/{image['id']}").status_code == 403
    unprotect = [{"op": "replace", "path": "/protected", "value": False}]
    assert patch(api, image["id"], unprotect).status_code == 200
    assert api.delete(f"/image/v2/images/{image['id']}").status_code == 204


@pytest.mark.parametrize(
    "ops, status",
    [
        ([{"op": "replace", "path": "/status", "value": "active"}], 403),
        ([{"op": "replace", "path": "/visibility", "value": "public"}], 403),
        ([{"op": "remove", "path": "/name"}], 403),
        ([{"op": "remove", "path": "/missing"}], 409),
        ([{"op": "replace", "path": "/missing", "value": "x"}], 409),
        ([{"op": "move", "path": "/name", "from": "/x"}], 400),
        ([{"op": "replace", "path": "/min_disk", "value": "big"}], 400),
        ([{"op": "replace", "path": "/a/b", "value": "x"}], 400),
        ({"op": "replace"}, 400),
    ],
)
def test_bad_patches(api_as, member, ops, status):
    api = api_as(member)
    image = create(api)
    response = patch(api, image["id"], ops)
    assert response.status_code == status, response.content
    assert Image.objects.get(pk=image["id"]).name == "img"


def test_formats_fixed_once_data_is_there(api_as, member):
    api = api_as(member)
    image = create(api)
    upload(api, image["id"])
    ops = [{"op": "replace", "path": "/disk_format", "value": "qcow2"}]
    assert patch(api, image["id"], ops).status_code == 403


def test_reader_cannot_patch_or_delete(api_as, member, reader):
    image = create(api_as(member))
    ops = [{"op": "replace", "path": "/name", "value": "x"}]
    assert patch(api_as(reader), image["id"], ops).status_code == 403
    assert api_as(reader).delete(f"/image/v2/images/{image['id']}").status_code == 403


def test_schemas(api_as, member):
    api = api_as(member)
    image = api.get("/image/v2/schemas/image")
    assert image.status_code == 200
    assert image.json()["name"] == "image"
    assert "visibility" in image.json()["properties"]
    images = api.get("/image/v2/schemas/images")
    assert images.status_code == 200
    assert images.json()["properties"]["images"]["items"]["name"] == "image"


# --- bodies without a length, and bodies too large


class DecodedChunkedBody:
    """What a server hands the WSGI app for a `Transfer-Encoding: chunked` body (a2wsgi's input
    under uvicorn, gunicorn's own): the bytes with the framing gone, read(n) giving at most n,
    b"" at the end, and no CONTENT_LENGTH at all. `fail` raises after that many bytes, as the
    input does when the client goes away (cloud/asgi.py)."""

    def __init__(self, data: bytes, piece: int = 1000, fail: int | None = None):
        self.data, self.piece, self.fail, self.offset = data, piece, fail, 0

    def read(self, size: int = -1) -> bytes:
        if self.fail is not None and self.offset >= self.fail:
            raise ConnectionResetError("the client disconnected before the end of the body")
        # Like a network read, one piece at a time whatever was asked for.
        size = self.piece if size < 0 else min(size, self.piece)
        chunk = self.data[self.offset : self.offset + size]
        self.offset += len(chunk)
        return chunk

    def readline(self, size: int = -1) -> bytes:  # WSGI asks for it; uploads never call it
        raise AssertionError("an upload must not read its body by lines")


def upload_chunked(api, image_id: str, body: DecodedChunkedBody):
    return api.client.put(
        f"/image/v2/images/{image_id}/file",
        CONTENT_TYPE="application/octet-stream",
        HTTP_TRANSFER_ENCODING="chunked",
        **{"wsgi.input": body},
        **api._headers(None),
    )


def test_a_chunked_upload_stores_what_was_sent(api_as, member, image_dir):
    data = bytes(range(256)) * 4099  # a size that is no multiple of any chunk size
    api = api_as(member)
    image = create(api)
    response = upload_chunked(api, image["id"], DecodedChunkedBody(data, piece=65521))
    assert response.status_code == 204, response.content
    shown = api.get(f"/image/v2/images/{image['id']}").json()
    assert shown["status"] == "active"
    assert shown["size"] == len(data)
    assert shown["checksum"] == hashlib.md5(data).hexdigest()
    assert shown["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert download_bytes(api.get(f"/image/v2/images/{image['id']}/file")) == data
    assert [p.name for p in leftovers(image_dir)] == [image["id"]]


def test_a_chunked_upload_over_the_limit_is_413_and_keeps_nothing(
    api_as, member, settings, image_dir
):
    settings.KUMO_IMAGE_MAX_SIZE = 5000
    api = api_as(member)
    image = create(api)
    body = DecodedChunkedBody(b"x" * 50_000)
    response = upload_chunked(api, image["id"], body)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == 413
    assert body.offset < 50_000  # refused while it streamed, not after reading all of it
    assert Image.objects.get(pk=image["id"]).status == "queued"
    assert leftovers(image_dir) == []
    assert upload_chunked(api, image["id"], DecodedChunkedBody(b"x" * 5000)).status_code == 204


def test_a_chunked_upload_cut_short_is_400_and_keeps_nothing(api_as, member, image_dir):
    api = api_as(member)
    image = create(api)
    response = upload_chunked(api, image["id"], DecodedChunkedBody(DATA, fail=len(DATA) // 2))
    assert response.status_code == 400
    assert "disconnected" in response.json()["error"]["message"]
    assert Image.objects.get(pk=image["id"]).status == "queued"
    assert leftovers(image_dir) == []


def test_limit_zero_is_400_in_glance_shape(api_as, member):
    response = api_as(member).get("/image/v2/images?limit=0")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == 400
    assert api_as(member).get("/image/v2/images?limit=-1").status_code == 400
    assert api_as(member).get("/image/v2/images?limit=1").status_code == 200


def test_a_json_body_over_the_limit_is_413_and_changes_nothing(api_as, member, settings):
    api = api_as(member)
    image = create(api)
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    big = "y" * 2000
    response = api.post("/image/v2/images", {"name": "big", "note": big})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == 413
    response = patch(api, image["id"], [{"op": "add", "path": "/note", "value": big}])
    assert response.status_code == 413
    assert response.json()["error"]["code"] == 413
    assert [(i.name, i.properties) for i in Image.objects.all()] == [("img", {})]


# --- Glance's older JSON-patch dialect


def patch_v20(api, image_id: str, ops: list, content_type: str | None = None):
    return api.client.patch(
        f"/image/v2/images/{image_id}",
        data=json.dumps(ops),
        content_type=content_type or "application/openstack-images-v2.0-json-patch",
        **api._headers(None),
    )


def test_the_v20_patch_dialect_names_the_operation_by_its_key(api_as, member):
    """What Tempest's images client sends: {"replace": "/name", "value": …}."""
    api = api_as(member)
    image = create(api, extra="1")
    response = patch_v20(api, image["id"], [
        {"replace": "/name", "value": "renamed"},
        {"add": "/hw_disk_bus", "value": "virtio"},
        {"remove": "/extra"},
    ])
    assert response.status_code == 200, response.content
    body = api.get(f"/image/v2/images/{image['id']}").json()
    assert (body["name"], body["hw_disk_bus"]) == ("renamed", "virtio")
    assert "extra" not in body


@pytest.mark.parametrize(
    "ops, status",
    [
        # In this dialect an add may not overwrite, a core attribute or a property.
        ([{"add": "/name", "value": "x"}], 409),
        ([{"add": "/extra", "value": "x"}], 409),
        ([{"replace": "/name", "remove": "/extra", "value": "x"}], 400),
        ([{"op": "replace", "path": "/name", "value": "x"}], 400),
        ([{"replace": "/name"}], 400),
        ([{"replace": "/status", "value": "active"}], 403),
    ],
)
def test_bad_v20_patches_change_nothing(api_as, member, ops, status):
    api = api_as(member)
    image = create(api, extra="1")
    response = patch_v20(api, image["id"], ops)
    assert response.status_code == status, response.content
    assert response.json()["error"]["code"] == status
    row = Image.objects.get(pk=image["id"])
    assert (row.name, row.properties) == ("img", {"extra": "1"})


@pytest.mark.parametrize("content_type", ["application/json", "application/json-patch+json"])
def test_other_patch_media_types_are_415_and_say_which_are_accepted(api_as, member, content_type):
    api = api_as(member)
    image = create(api)
    ops = [{"op": "replace", "path": "/name", "value": "x"}]
    response = patch_v20(api, image["id"], ops, content_type=content_type)
    assert response.status_code == 415
    assert response.json()["error"]["code"] == 415
    assert response["Accept-Patch"] == (
        "application/openstack-images-v2.0-json-patch, "
        "application/openstack-images-v2.1-json-patch"
    )
    assert Image.objects.get(pk=image["id"]).name == "img"


# --- deactivation


def action(api, image_id: str, name: str):
    return api.client.post(f"/image/v2/images/{image_id}/actions/{name}", **api._headers(None))


def test_deactivate_and_reactivate(api_as, member, admin):
    api = api_as(member)
    image = create(api)
    upload(api, image["id"])
    assert action(api, image["id"], "deactivate").status_code == 204
    assert action(api, image["id"], "deactivate").status_code == 204  # no-op when deactivated
    assert api.get(f"/image/v2/images/{image['id']}").json()["status"] == "deactivated"
    refused = api.get(f"/image/v2/images/{image['id']}/file")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == 403
    assert download_bytes(api_as(admin).get(f"/image/v2/images/{image['id']}/file")) == DATA
    assert action(api, image["id"], "reactivate").status_code == 204
    assert action(api, image["id"], "reactivate").status_code == 204  # no-op when active
    assert api.get(f"/image/v2/images/{image['id']}").json()["status"] == "active"
    assert download_bytes(api.get(f"/image/v2/images/{image['id']}/file")) == DATA


def test_deactivation_is_for_active_images_of_ones_own_project(api_as, member, reader, other):
    api = api_as(member)
    image = create(api)
    for name in ("deactivate", "reactivate"):
        response = action(api, image["id"], name)
        assert response.status_code == 403  # queued: as Glance, not allowed from this status
        assert response.json()["error"]["code"] == 403
    upload(api, image["id"])
    assert action(api_as(reader), image["id"], "deactivate").status_code == 403
    assert action(api_as(other), image["id"], "deactivate").status_code == 404
    assert Image.objects.get(pk=image["id"]).status == "active"


def test_size_filters_and_sorting_by_size(api_as, member):
    api = api_as(member)
    sizes = {}
    for n in (3, 1, 2):
        image = create(api, name=f"s{n}")
        upload(api, image["id"], b"x" * (1024 * n))
        sizes[image["id"]] = 1024 * n
    empty = create(api, name="empty")

    def ids(query: str) -> list[str]:
        return [i["id"] for i in api.get(f"/image/v2/images?{query}").json()["images"]]

    by_size = {v: k for k, v in sizes.items()}
    assert ids("size=2048") == [by_size[2048]]
    assert set(ids("size_min=1500&size_max=3072")) == {by_size[2048], by_size[3072]}
    # Glance's newer syntax and the older one agree; an image without data sorts last when
    # descending.
    expected = [by_size[3072], by_size[2048], by_size[1024], empty["id"]]
    assert ids("sort=size:desc") == expected
    assert ids("sort_key=size&sort_dir=desc") == expected
    assert api.get("/image/v2/images?size_min=big").status_code == 400
    assert api.get("/image/v2/images?sort=size:sideways").status_code == 400
    assert api.get("/image/v2/images?sort=size&sort_key=name").status_code == 400


def test_pages_by_two_sort_keys_neither_skip_nor_repeat(api_as, member):
    api = api_as(member)
    made = set()
    for name in ("b", "a", "b", "a", "c", "b"):
        made.add(create(api, name=name, disk_format="raw" if name != "c" else "qcow2")["id"])
    seen, names = [], []
    url = "/image/v2/images?limit=2&sort=disk_format:asc,name:desc"
    while url:
        body = api.get(url).json()
        seen += [i["id"] for i in body["images"]]
        names += [(i["disk_format"], i["name"]) for i in body["images"]]
        url = "/image" + body["next"] if "next" in body else None
    assert len(seen) == 6 and set(seen) == made
    assert names == sorted(names, key=lambda p: (p[0], [-ord(c) for c in p[1]]))
