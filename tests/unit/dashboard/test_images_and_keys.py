"""Images (with the streamed browser upload), key pairs and server groups in the dashboard."""

from __future__ import annotations

import pytest

from cloud.compute.models import KeyPair, ServerGroup
from cloud.images.models import Image
from tests.stack import qcow2_bytes

from .conftest import signed_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def image_dir(settings, tmp_path):
    settings.KUMO_IMAGE_DIR = tmp_path / "images"
    return settings.KUMO_IMAGE_DIR


def _upload(client, data: bytes, **fields):
    created = client.post("/images/create", {
        "name": "disk", "disk_format": "qcow2", "container_format": "bare",
        "visibility": "private", "min_disk": "0", "min_ram": "0", **fields,
    }, HTTP_ACCEPT="application/json")
    return created, (client.put(created.json()["upload_url"], data,
                                content_type="application/octet-stream")
                     if created.status_code == 201 else None)


def test_an_upload_creates_the_image_then_streams_its_bytes(member, image_dir):
    data = qcow2_bytes()
    created, uploaded = _upload(signed_in(member), data)
    assert created.status_code == 201 and uploaded.status_code == 200
    image = Image.objects.get(pk=created.json()["id"])
    assert image.status == "active" and image.size == len(data)
    assert image.owner_id == member.project.pk
    assert uploaded.json()["status"] == "active"


def test_the_upload_reads_the_body_in_chunks_never_whole(member, image_dir, monkeypatch):
    from cloud.dashboard import images as dashboard_images

    monkeypatch.setattr(dashboard_images, "CHUNK_SIZE", 4096)
    seen = []
    real = dashboard_images._body_chunks

    def spy(request):
        for chunk in real(request):
            seen.append(len(chunk))
            yield chunk

    monkeypatch.setattr(dashboard_images, "_body_chunks", spy)
    data = qcow2_bytes()
    _, uploaded = _upload(signed_in(member), data)
    assert uploaded.status_code == 200
    assert len(seen) > 1 and max(seen) <= 4096 and sum(seen) == len(data)


def test_bytes_that_are_not_the_declared_format_are_refused_in_words(member, image_dir):
    created, uploaded = _upload(signed_in(member), b"not a qcow2 at all" * 100)
    assert uploaded.status_code == 400 and uploaded.json()["error"]
    assert Image.objects.get(pk=created.json()["id"]).status == "queued"


def test_only_admins_may_make_an_image_public(member, image_dir):
    created, _ = _upload(signed_in(member), b"", visibility="public")
    assert created.status_code == 403


def test_a_reader_can_list_images_but_not_upload_or_delete(reader, member, image, image_dir):
    own = Image.objects.create(name="own", status="active", owner=member.project,
                               visibility="private")
    client = signed_in(reader)
    page = client.get("/images/").content.decode()
    assert "cirros" in page and "own" in page and "upload-form" not in page
    assert "Delete" not in client.get(f"/images/{own.id}/").content.decode()
    created, _ = _upload(client, b"")
    assert created.status_code == 403
    assert client.post(f"/images/{own.id}/delete").status_code == 403
    assert client.put(f"/images/{own.id}/data", b"x", content_type="application/octet-stream"
                      ).status_code == 403
    assert Image.objects.filter(pk=own.pk).exists()


def test_another_projects_private_image_is_not_found(member, other):
    private = Image.objects.create(name="secret", status="active", owner=other.project,
                                   visibility="private")
    client = signed_in(member)
    assert "secret" not in client.get("/images/").content.decode()
    assert client.get(f"/images/{private.id}/").status_code == 404
    assert client.post(f"/images/{private.id}/delete").status_code == 404


def test_a_member_deletes_their_projects_image_after_confirming(member):
    own = Image.objects.create(name="own", status="active", owner=member.project)
    client = signed_in(member)
    assert "Delete image own?" in client.get(f"/images/{own.id}/delete").content.decode()
    assert Image.objects.filter(pk=own.pk).exists()
    assert client.post(f"/images/{own.id}/delete")["Location"] == "/images/"
    assert not Image.objects.filter(pk=own.pk).exists()


# --- key pairs


def test_a_created_key_pairs_private_key_is_handed_over_once_and_not_kept(member):
    client = signed_in(member)
    response = client.post("/keypairs/create", {"create-name": "laptop"})
    page = response.content.decode()
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    assert 'download="laptop.pem"' in page and "data:application/x-pem-file;base64," in page
    keypair = KeyPair.objects.get(user=member.user, name="laptop")
    assert "PRIVATE" not in keypair.public_key
    listing = client.get("/keypairs/").content.decode()
    assert "laptop" in listing and "x-pem-file" not in listing


def test_importing_a_key_checks_it_and_names_the_field(member):
    from cloud.compute.keypairs import generate_ssh_keypair

    public, _ = generate_ssh_keypair()
    client = signed_in(member)
    bad = client.post("/keypairs/import", {"import-name": "k", "import-public_key": "nonsense"})
    assert bad.status_code == 400 and "failed to generate fingerprint" in bad.content.decode()
    good = client.post("/keypairs/import", {"import-name": "k", "import-public_key": public})
    assert good.status_code == 302
    again = client.post("/keypairs/import", {"import-name": "k", "import-public_key": public})
    assert "already exists" in again.content.decode()


def test_key_pairs_are_the_users_own(member, other):
    KeyPair.objects.create(user=other.user, name="theirs", public_key="k", fingerprint="f")
    client = signed_in(member)
    assert "theirs" not in client.get("/keypairs/").content.decode()
    assert client.post("/keypairs/theirs/delete").status_code == 404
    assert KeyPair.objects.filter(name="theirs").exists()


def test_a_key_pairs_page_shows_its_public_key_to_its_owner_only(member, other):
    from cloud.compute.keypairs import generate_ssh_keypair

    public, _ = generate_ssh_keypair()
    client = signed_in(member)
    client.post("/keypairs/import", {"import-name": "laptop", "import-public_key": public})
    listing = client.get("/keypairs/").content.decode()
    assert 'href="/keypairs/laptop/"' in listing
    page = client.get("/keypairs/laptop/").content.decode()
    assert public.strip() in page and "data-public-key" in page
    assert KeyPair.objects.get(name="laptop").fingerprint in page
    assert signed_in(other).get("/keypairs/laptop/").status_code == 404


# --- server groups


def test_server_groups_are_created_and_deleted_by_members_only(member, reader, other):
    client = signed_in(member)
    assert client.post("/server-groups/create", {"name": "web", "policy": "anti-affinity"}
                       ).status_code == 302
    group = ServerGroup.objects.get(name="web")
    reading = signed_in(reader)
    page = reading.get("/server-groups/").content.decode()
    assert "web" in page and "/delete" not in page and "Create a server group" not in page
    assert reading.post("/server-groups/create", {"name": "x", "policy": "affinity"}
                        ).status_code == 403
    assert reading.post(f"/server-groups/{group.uuid}/delete").status_code == 403
    assert signed_in(other).post(f"/server-groups/{group.uuid}/delete").status_code == 404
    assert "web" not in signed_in(other).get("/server-groups/").content.decode()
    assert client.post(f"/server-groups/{group.uuid}/delete").status_code == 302
    assert not ServerGroup.objects.exists()
