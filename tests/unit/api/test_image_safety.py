"""Uploads of hostile disk images: each is refused with a 400 that says why, the image stays
queued with no bytes kept, and nothing runs a program (qemu-img above all) while it is judged."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from unittest import mock

import pytest

from cloud import errors
from cloud.identity.context import RequestContext
from cloud.images import images as image_records
from cloud.images.inspect import HEAD_SIZE
from cloud.images.models import Image
from tests.unit.images import corpus
from tests.unit.images.corpus import BENIGN, HOSTILE, MIB, Case


@pytest.fixture(autouse=True)
def image_dir(settings, tmp_path):
    settings.KUMO_IMAGE_DIR = tmp_path / "images"
    return settings.KUMO_IMAGE_DIR


class SubprocessStarted(AssertionError):
    pass


@contextmanager
def no_subprocesses() -> Iterator[list[tuple]]:
    """Fail on any attempt to start a program; the list records attempts, in case the code under
    test swallowed the failure."""
    attempts: list[tuple] = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise SubprocessStarted(f"a subprocess was started: {args!r}")

    with ExitStack() as stack:
        for module, name in [(subprocess, "Popen"), (subprocess, "run"), (os, "system"),
                             (os, "popen"), (os, "posix_spawn"), (os, "posix_spawnp"),
                             (os, "fork")]:
            stack.enter_context(mock.patch.object(module, name, refuse))
        yield attempts
    assert attempts == []


def create(api, disk_format: str) -> dict:
    body = {"name": "img", "disk_format": disk_format, "container_format": "bare"}
    response = api.post("/image/v2/images", body)
    assert response.status_code == 201, response.content
    return response.json()


def upload(api, image_id: str, data: bytes):
    return api.client.put(
        f"/image/v2/images/{image_id}/file",
        data=data,
        content_type="application/octet-stream",
        **api._headers(None),
    )


def leftovers(image_dir) -> list:
    return list(image_dir.iterdir()) if image_dir.exists() else []


def test_the_guard_notices_a_subprocess():
    with pytest.raises(SubprocessStarted), no_subprocesses():
        subprocess.run(["true"], check=False)


@pytest.mark.parametrize("case", HOSTILE, ids=str)
def test_a_hostile_image_is_refused_and_stays_queued_with_nothing_kept(
    api_as, member, image_dir, case: Case
):
    api = api_as(member)
    image = create(api, case.disk_format)
    with no_subprocesses():
        response = upload(api, image["id"], case.data)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == 400
    assert case.why in error["message"]
    shown = api.get(f"/image/v2/images/{image['id']}").json()
    assert (shown["status"], shown["size"], shown["virtual_size"], shown["checksum"]) == (
        "queued", None, None, None)
    assert leftovers(image_dir) == []
    assert api.get(f"/image/v2/images/{image['id']}/file").status_code == 204


@pytest.mark.parametrize("case", BENIGN, ids=str)
def test_a_benign_image_uploads_and_records_its_virtual_size(api_as, member, case: Case):
    api = api_as(member)
    image = create(api, case.disk_format)
    with no_subprocesses():
        response = upload(api, image["id"], case.data)
    assert response.status_code == 204, response.content
    shown = api.get(f"/image/v2/images/{image['id']}").json()
    assert shown["status"] == "active"
    assert shown["size"] == len(case.data)
    assert shown["virtual_size"] >= 1


def test_a_qcow2_records_the_disk_size_its_header_states(api_as, member):
    api = api_as(member)
    image = create(api, "qcow2")
    assert upload(api, image["id"], corpus.qcow2(virtual_size=3 * corpus.GIB)).status_code == 204
    assert api.get(f"/image/v2/images/{image['id']}").json()["virtual_size"] == 3 * corpus.GIB


def test_after_a_refusal_the_right_bytes_can_be_uploaded(api_as, member, image_dir):
    api = api_as(member)
    image = create(api, "qcow2")
    assert upload(api, image["id"], corpus.qcow2(backing=b"/etc/passwd")).status_code == 400
    assert upload(api, image["id"], corpus.qcow2()).status_code == 204
    assert api.get(f"/image/v2/images/{image['id']}").json()["status"] == "active"
    assert len(leftovers(image_dir)) == 1


def test_the_virtual_size_limit_is_the_operators_setting(api_as, member, settings, image_dir):
    settings.KUMO_IMAGE_MAX_VIRTUAL_SIZE = 8 * MIB
    api = api_as(member)
    image = create(api, "qcow2")
    response = upload(api, image["id"], corpus.qcow2(virtual_size=16 * MIB))
    assert response.status_code == 400
    assert "exceeds the limit of 8388608 bytes" in response.json()["error"]["message"]
    assert leftovers(image_dir) == []


def test_a_format_that_cannot_be_inspected_is_refused_before_the_upload_starts(
    api_as, member, image_dir
):
    api = api_as(member)
    image = create(api, "ploop")
    response = upload(api, image["id"], corpus.raw_disk())
    assert response.status_code == 400
    assert "cannot be inspected" in response.json()["error"]["message"]
    assert Image.objects.get(pk=image["id"]).status == "queued"
    assert leftovers(image_dir) == []


def _ctx(persona) -> RequestContext:
    return RequestContext(
        user_id=persona.user.id,
        user_name=persona.user.name,
        project_id=persona.project.id,
        project_name=persona.project.name,
        roles=("member", "reader"),
    )


def test_a_hostile_stream_is_cut_off_without_reading_it_all(member, image_dir):
    consumed: list[int] = []

    def endless() -> Iterator[bytes]:
        while True:
            consumed.append(MIB)
            yield b"\0" * MIB

    ctx = _ctx(member)
    image = image_records.create_image(ctx, {"disk_format": "qcow2", "container_format": "bare"})
    with pytest.raises(errors.BadRequest, match="disk_format is qcow2"), no_subprocesses():
        image_records.upload_image(ctx, image.id, endless(), None)
    assert sum(consumed) <= HEAD_SIZE + MIB
    image.refresh_from_db()
    assert image.status == "queued"
    assert leftovers(image_dir) == []


@pytest.fixture(scope="module")
def qemu_images(tmp_path_factory):
    if corpus.qemu_img() is None:
        pytest.skip("qemu-img is not installed (it comes with qemu-utils at setup)")
    return corpus.qemu_img_fixtures(tmp_path_factory.mktemp("qemu-img"))


@pytest.mark.parametrize(
    "name",
    ["disk.qcow2", "disk.raw", "sparse.vmdk", "stream.vmdk", "disk.vhd", "disk.vhdx", "disk.vdi",
     "backed.qcow2", "external.qcow2", "flat.vmdk"],
)
def test_images_made_by_qemu_img_upload_or_are_refused_as_they_should(
    api_as, member, image_dir, qemu_images, name
):
    made = qemu_images[name]
    api = api_as(member)
    image = create(api, made.disk_format)
    with no_subprocesses():
        response = upload(api, image["id"], made.path.read_bytes())
    shown = api.get(f"/image/v2/images/{image['id']}").json()
    if made.why:
        assert response.status_code == 400
        assert made.why in response.json()["error"]["message"]
        assert shown["status"] == "queued"
        assert leftovers(image_dir) == []
    else:
        assert response.status_code == 204, response.content
        assert (shown["status"], shown["virtual_size"]) == ("active", made.virtual_size)
