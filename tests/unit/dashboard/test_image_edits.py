"""Images: tags and properties at upload, and an edit page that changes name, visibility,
minimums, protection, tags and properties through the image API's own update."""

from __future__ import annotations

import html

import pytest

from cloud.images.models import Image

from .conftest import signed_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def owned(member) -> Image:
    return Image.objects.create(name="base", status="active", disk_format="qcow2",
                                container_format="bare", visibility="private", size=1,
                                owner_id=member.project.pk, tags=["old"],
                                properties={"os_distro": "debian", "gone": "x"})


def _edit(**changes):
    values = {"name": "base", "visibility": "private", "min_disk": "0", "min_ram": "0",
              "tags": "old", "properties": "os_distro=debian\ngone=x"}
    values.update(changes)
    return values


def test_an_image_is_created_with_tags_and_properties(member):
    response = signed_in(member).post("/images/create", {
        "name": "tagged", "disk_format": "raw", "container_format": "bare",
        "visibility": "private", "min_disk": "0", "min_ram": "0", "tags": "web, db, web",
        "properties": "os_distro=debian\nhw_disk_bus = virtio",
    }, HTTP_ACCEPT="application/json")
    assert response.status_code == 201, response.content
    image = Image.objects.get(name="tagged")
    assert image.tags == ["web", "db"]
    assert image.properties == {"os_distro": "debian", "hw_disk_bus": "virtio"}


def test_the_owner_edits_everything_glance_lets_change(member, owned):
    client = signed_in(member)
    detail = client.get(f"/images/{owned.id}/").content.decode()
    assert f"/images/{owned.id}/edit" in detail and 'data-property="os_distro"' in detail
    form = client.get(f"/images/{owned.id}/edit").content.decode()
    assert "os_distro=debian" in form and 'value="old"' in form
    assert 'value="public"' not in form  # only admins publish
    response = client.post(f"/images/{owned.id}/edit", _edit(
        name="base-2", visibility="community", min_disk="2", min_ram="256", protected="on",
        tags="web, new", properties="os_distro=ubuntu\nhw_disk_bus=virtio"))
    assert response.status_code == 302
    owned.refresh_from_db()
    assert (owned.name, owned.visibility, owned.min_disk, owned.min_ram, owned.protected) == (
        "base-2", "community", 2, 256, True)
    assert owned.tags == ["web", "new"]
    assert owned.properties == {"os_distro": "ubuntu", "hw_disk_bus": "virtio"}


def test_a_refusal_of_the_image_service_is_shown_and_nothing_changes(member, owned):
    response = signed_in(member).post(f"/images/{owned.id}/edit", _edit(
        name="renamed", properties="os_distro=debian\nstatus=active"))
    assert response.status_code == 400
    assert "Attribute &#x27;status&#x27; is read-only." in response.content.decode()
    owned.refresh_from_db()
    assert owned.name == "base"  # one patch: all of it or nothing


def test_publishing_is_for_admins_and_others_images_are_not_editable(member, other, owned,
                                                                     admin):
    refused = signed_in(member).post(f"/images/{owned.id}/edit", _edit(visibility="public"))
    assert refused.status_code == 400
    assert signed_in(admin).post(f"/images/{owned.id}/edit", _edit(visibility="public")
                                 ).status_code == 302
    owned.refresh_from_db()
    assert owned.visibility == "public"
    theirs = signed_in(other)
    assert f"/images/{owned.id}/edit" not in theirs.get(f"/images/{owned.id}/").content.decode()
    page = theirs.post(f"/images/{owned.id}/edit", _edit(name="taken"))
    assert "not permitted to modify" in html.unescape(page.content.decode())
    owned.refresh_from_db()
    assert owned.name == "base"


def test_a_reader_cannot_edit(reader, owned):
    assert signed_in(reader).post(f"/images/{owned.id}/edit", _edit(name="x")).status_code == 403
