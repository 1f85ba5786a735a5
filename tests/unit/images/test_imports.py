"""Staged data is never lost or stuck: a staging whose process dies returns the image to queued
(at once when it is staged again, or by the sweep), complete staged data waits for its import
through any number of sweeps, and an import is whole or nothing."""

from __future__ import annotations

import pytest

from cloud import errors
from cloud.identity.context import RequestContext
from cloud.images import images as image_records
from cloud.images import imports, storage
from cloud.images.models import Image
from cloud.images.uploads import recover_abandoned_uploads, recover_upload
from tests.unit.images.test_storage import files, kill, uploader

DATA = b"staged bytes\n" * 1000


@pytest.fixture(autouse=True)
def image_dir(settings, tmp_path):
    settings.KUMO_IMAGE_DIR = tmp_path / "images"
    return settings.KUMO_IMAGE_DIR


@pytest.fixture
def ctx(member) -> RequestContext:
    return RequestContext(
        user_id=member.user.id, user_name=member.user.name, project_id=member.project.id,
        project_name=member.project.name, roles=("member", "reader"), request_id="req-test",
    )


def queued(ctx: RequestContext) -> Image:
    return image_records.create_image(ctx, {"disk_format": "raw", "container_format": "bare"})


def stage(ctx: RequestContext, image: Image, data: bytes = DATA) -> Image:
    return imports.stage_image(ctx, image.id, iter([data[:10], data[10:]]), len(data))


def glance_direct(ctx: RequestContext, image: Image):
    return imports.import_image(ctx, image.id, {"method": {"name": "glance-direct"}})


def staging(image: Image) -> Image:
    """The row as a staging leaves it while its bytes stream."""
    Image.objects.filter(pk=image.pk).update(status="uploading")
    image.refresh_from_db()
    return image


def refreshed(image: Image) -> Image:
    image.refresh_from_db()
    return image


def test_staged_data_survives_every_sweep_and_imports_later(ctx, image_dir):
    image = stage(ctx, queued(ctx))
    assert refreshed(image).status == "uploading"
    assert recover_abandoned_uploads() == 0
    assert recover_upload(image.id) is False
    assert files(image_dir) == [f"{image.id}.staged"]
    glance_direct(ctx, image)
    image = refreshed(image)
    assert (image.status, image.size) == ("active", len(DATA))
    assert storage.path_for(image.id).read_bytes() == DATA
    assert files(image_dir) == [str(image.id)]


def test_a_staging_whose_process_died_is_taken_over_by_the_next_one(ctx, image_dir):
    image = staging(queued(ctx))
    with uploader(image.id, image_dir) as proc:
        kill(proc)
        stage(ctx, image, b"second try " * 10)
    assert refreshed(image).status == "uploading"
    assert files(image_dir) == [f"{image.id}.staged"]
    glance_direct(ctx, image)
    assert storage.path_for(image.id).read_bytes() == b"second try " * 10


def test_the_sweep_returns_an_abandoned_staging_to_queued_and_leaves_a_live_one(ctx, image_dir):
    image = staging(queued(ctx))
    with uploader(image.id, image_dir) as proc:
        assert recover_abandoned_uploads() == 0
        with pytest.raises(errors.Conflict):
            stage(ctx, image)
        assert refreshed(image).status == "uploading"
        kill(proc)
        assert recover_abandoned_uploads() == 1
    assert refreshed(image).status == "queued"
    assert files(image_dir) == []


def test_staged_data_renamed_by_a_process_that_died_before_its_commit_goes(ctx, image_dir):
    """The rename happened, the commit that records the size did not: not staged, abandoned."""
    image = staging(queued(ctx))
    part = storage.open_part(image.id)
    storage.write_part(part, iter([DATA]), len(DATA))
    storage.publish(part, image.id, staged=True)
    part.close()
    assert recover_abandoned_uploads() == 1
    image = refreshed(image)
    assert (image.status, image.size) == ("queued", None)
    assert files(image_dir) == []


def test_staged_data_that_was_lost_is_recovered_and_its_import_refused(ctx, image_dir):
    image = stage(ctx, queued(ctx))
    storage.delete_staged(image.id)
    with pytest.raises(errors.Conflict):
        glance_direct(ctx, image)
    assert refreshed(image).status == "uploading"
    assert recover_abandoned_uploads() == 1
    image = refreshed(image)
    assert (image.status, image.size, image.checksum) == ("queued", None, None)


def test_an_import_whose_commit_fails_leaves_the_data_staged(ctx, image_dir, monkeypatch):
    image = stage(ctx, queued(ctx))

    def no_commit(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(Image.objects.filter(pk=image.pk).__class__, "update", no_commit)
    with pytest.raises(RuntimeError):
        glance_direct(ctx, image)
    monkeypatch.undo()
    assert refreshed(image).status == "uploading"
    assert files(image_dir) == [f"{image.id}.staged"]
    glance_direct(ctx, image)
    assert refreshed(image).status == "active"
    # The failed attempt's task did not stay processing.
    assert [t.status for t in image.tasks.order_by("created_at")] == ["failure", "success"]
