"""An upload's way to active, and what happens to one whose process dies on the way: the image
returns to queued with nothing left on disk, at once (a new upload takes over) or by the sweep
(recover_abandoned_uploads), and a live upload is never mistaken for a dead one."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud import errors
from cloud.identity.context import RequestContext
from cloud.images import images as image_records
from cloud.images import storage
from cloud.images.models import Image
from cloud.images.uploads import recover_abandoned_uploads, recover_upload
from tests.unit.images.test_storage import files, kill, uploader

DATA = b"kumo image bytes\n" * 1000


@pytest.fixture(autouse=True)
def image_dir(settings, tmp_path):
    settings.KUMO_IMAGE_DIR = tmp_path / "images"
    return settings.KUMO_IMAGE_DIR


def ctx_of(persona) -> RequestContext:
    return RequestContext(
        user_id=persona.user.id, user_name=persona.user.name, project_id=persona.project.id,
        project_name=persona.project.name, roles=("member", "reader"),
    )


@pytest.fixture
def ctx(member) -> RequestContext:
    return ctx_of(member)


def queued(ctx: RequestContext) -> Image:
    return image_records.create_image(ctx, {"disk_format": "raw", "container_format": "bare"})


def upload(ctx: RequestContext, image: Image, data: bytes = DATA) -> Image:
    return image_records.upload_image(ctx, image.id, iter([data[:100], data[100:]]), len(data))


def saving(image: Image) -> Image:
    """The row as an upload leaves it while its bytes stream."""
    Image.objects.filter(pk=image.pk).update(status="saving")
    image.refresh_from_db()
    return image


def status(image: Image) -> str:
    image.refresh_from_db()
    return image.status


def assert_holds(image: Image, data: bytes, image_dir: Path) -> None:
    image.refresh_from_db()
    assert image.status == "active"
    assert (image.size, image.checksum) == (len(data), hashlib.md5(data).hexdigest())
    assert image.os_hash_value == hashlib.sha512(data).hexdigest()
    assert storage.path_for(image.id).read_bytes() == data
    assert files(image_dir) == [str(image.id)]


def test_an_upload_stores_what_was_sent_and_nothing_else(ctx, image_dir):
    image = queued(ctx)
    upload(ctx, image)
    assert_holds(image, DATA, image_dir)


def test_a_new_upload_takes_over_at_once_from_one_whose_process_died(ctx, image_dir):
    image = saving(queued(ctx))
    with uploader(image.id, image_dir) as proc:
        kill(proc)
        # The old upload's part file is still there; the new upload neither waits nor gets 409.
        assert len(files(image_dir)) == 1
        upload(ctx, image, b"second try " * 100)
    assert_holds(image, b"second try " * 100, image_dir)


def test_an_upload_in_progress_is_never_taken_for_an_abandoned_one(ctx, image_dir):
    image = saving(queued(ctx))
    with uploader(image.id, image_dir) as proc:
        with pytest.raises(errors.Conflict):
            upload(ctx, image)
        assert recover_abandoned_uploads() == 0
        assert recover_upload(image.id) is False
        assert status(image) == "saving"
        assert len(files(image_dir)) == 1  # its part file, untouched
        kill(proc)
        assert recover_abandoned_uploads() == 1
    assert status(image) == "queued"
    assert files(image_dir) == []
    # Idempotent: a second sweep finds nothing to do.
    assert recover_abandoned_uploads() == 0
    upload(ctx, image)
    assert_holds(image, DATA, image_dir)


def test_the_sweep_needs_no_later_upload(ctx, other, image_dir):
    """Two images of two projects abandoned at once: one sweep returns both to queued."""
    mine, theirs = saving(queued(ctx)), saving(queued(ctx_of(other)))
    untouched = queued(ctx)
    with uploader(mine.id, image_dir) as a, uploader(theirs.id, image_dir) as b:
        kill(a)
        kill(b)
        assert recover_abandoned_uploads() == 2
    assert [status(mine), status(theirs), status(untouched)] == ["queued"] * 3
    assert files(image_dir) == []


def test_the_sweep_removes_the_parts_of_images_deleted_meanwhile(ctx, image_dir):
    image = saving(queued(ctx))
    with uploader(image.id, image_dir) as proc:
        kill(proc)
        Image.objects.filter(pk=image.pk).delete()
        assert recover_abandoned_uploads() == 0  # no image to reset
    assert files(image_dir) == []


def test_a_file_renamed_in_place_by_a_process_that_died_before_its_commit_goes(ctx, image_dir):
    image = saving(queued(ctx))
    storage.store(image.id, iter([b"never committed"]), 100)
    assert recover_abandoned_uploads() == 1
    assert status(image) == "queued"
    assert files(image_dir) == []


def test_active_images_and_their_files_are_never_touched(ctx, image_dir):
    image = queued(ctx)
    upload(ctx, image)
    assert recover_abandoned_uploads() == 0
    assert recover_upload(image.id) is False
    assert_holds(image, DATA, image_dir)


def test_an_image_deleted_while_its_data_streams_keeps_nothing(ctx, image_dir):
    image = queued(ctx)

    def chunks() -> Iterator[bytes]:
        yield b"first half "
        image_records.delete_image(ctx, image.id)
        yield b"second half"

    with pytest.raises(errors.NotFound):
        image_records.upload_image(ctx, image.id, chunks(), None)
    assert not Image.objects.filter(pk=image.pk).exists()
    assert files(image_dir) == []


def test_a_snapshot_killed_while_its_data_streams_stays_killed(ctx, image_dir):
    image = queued(ctx)

    def chunks() -> Iterator[bytes]:
        yield b"first half "
        Image.objects.filter(pk=image.pk).update(status="killed")
        yield b"second half"

    with pytest.raises(errors.Conflict):
        image_records.upload_image(ctx, image.id, chunks(), None)
    assert status(image) == "killed"
    assert files(image_dir) == []


def test_a_stream_that_fails_returns_the_image_to_queued_with_nothing_kept(ctx, image_dir):
    image = queued(ctx)

    def chunks() -> Iterator[bytes]:
        yield b"abc"
        raise ConnectionResetError("the client went away")

    with pytest.raises(errors.BadRequest):
        image_records.upload_image(ctx, image.id, chunks(), None)
    assert status(image) == "queued"
    assert files(image_dir) == []


def test_the_cap_stops_a_body_without_a_length_while_it_streams(ctx, image_dir, settings):
    settings.KUMO_IMAGE_MAX_SIZE = 10
    image = queued(ctx)
    read: list[bytes] = []

    def endless() -> Iterator[bytes]:
        while True:
            read.append(b"12345")
            yield b"12345"

    with pytest.raises(errors.RequestTooLarge):
        image_records.upload_image(ctx, image.id, endless(), None)
    assert len(read) == 3  # stopped at the first chunk past the cap, not at the end of the body
    assert status(image) == "queued"
    assert files(image_dir) == []


def test_the_sweep_resets_nothing_on_a_host_without_the_image_directory(ctx, settings, tmp_path):
    """A sweep run away from the web process's disk sees no part file, live or dead: it must not
    take every upload in progress for an abandoned one."""
    image = saving(queued(ctx))
    settings.KUMO_IMAGE_DIR = tmp_path / "elsewhere"
    assert recover_abandoned_uploads() == 0
    assert status(image) == "saving"
