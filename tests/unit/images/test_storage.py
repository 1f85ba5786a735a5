"""Image files on disk: names that cannot escape the image directory, part files renamed into
place whole, and the part-file lock that tells a live upload from one whose process died."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from cloud.images import storage

ROOT = Path(__file__).resolve().parents[3]

# A process that starts an upload the way the web process does and then hangs, to be killed.
_UPLOADER = """
import sys, time
from cloud.images import storage
part = storage.open_part(sys.argv[1])
part.file.write(b"half an image")
part.file.flush()
print(part.path, flush=True)
time.sleep(600)
"""


@pytest.fixture(autouse=True)
def image_dir(settings, tmp_path):
    settings.KUMO_IMAGE_DIR = tmp_path / "images"
    return settings.KUMO_IMAGE_DIR


@contextmanager
def uploader(image_id: object, image_dir: Path) -> Iterator[subprocess.Popen]:
    """A real process holding a part file of the image; SIGKILLed at the latest on exit."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "cloud.settings",
           "KUMO_IMAGE_DIR": str(image_dir)}
    proc = subprocess.Popen([sys.executable, "-c", _UPLOADER, str(image_id)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        path = proc.stdout.readline().strip()
        assert path, "the uploader process did not start"
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait()


def kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def files(image_dir: Path) -> list[str]:
    return sorted(p.name for p in image_dir.iterdir()) if image_dir.exists() else []


@pytest.mark.parametrize("bad", ["../etc/passwd", "", "abc", None, "/tmp/x"])
def test_storage_refuses_non_uuid_paths(bad):
    with pytest.raises(ValueError):
        storage.path_for(bad)


def test_storage_round_trip(image_dir):
    image_id = uuid.uuid4()
    size, md5, sha512 = storage.store(image_id, iter([b"ab", b"", b"cd"]), 10)
    assert (size, md5, sha512) == (
        4,
        hashlib.md5(b"abcd").hexdigest(),
        hashlib.sha512(b"abcd").hexdigest(),
    )
    with storage.open_image(str(image_id).upper()) as f:
        assert f.read() == b"abcd"
    assert files(image_dir) == [str(image_id)]
    assert storage.delete(image_id) is True
    assert storage.delete(image_id) is False


def test_a_store_over_the_cap_keeps_nothing(image_dir):
    with pytest.raises(storage.ImageTooLarge):
        storage.store(uuid.uuid4(), iter([b"12345", b"678901"]), 10)
    assert files(image_dir) == []


def test_a_part_file_counts_as_in_progress_while_its_process_lives(image_dir):
    image_id = uuid.uuid4()
    with uploader(image_id, image_dir) as proc:
        assert storage.upload_in_progress(image_id)
        assert storage.remove_abandoned_parts() == 0
        assert len(files(image_dir)) == 1
        kill(proc)
        # No waiting and no timeout: the kernel dropped the lock with the process.
        assert not storage.upload_in_progress(image_id)
        assert storage.remove_abandoned_parts(image_id) == 1
    assert files(image_dir) == []


def test_the_sweep_leaves_other_images_parts_and_live_ones_alone(image_dir):
    live, dead = uuid.uuid4(), uuid.uuid4()
    with uploader(live, image_dir), uploader(dead, image_dir) as doomed:
        kill(doomed)
        assert storage.remove_abandoned_parts(live) == 0
        assert storage.remove_abandoned_parts() == 1
        assert [name.split(".")[1] for name in files(image_dir)] == [str(live)]
        assert storage.upload_in_progress(live)


def test_a_part_file_of_this_process_is_live_until_closed(image_dir):
    image_id = uuid.uuid4()
    part = storage.open_part(image_id)
    assert storage.upload_in_progress(image_id)
    assert storage.remove_abandoned_parts() == 0
    part.close()
    assert not storage.upload_in_progress(image_id)
    assert files(image_dir) == []


def test_a_part_file_taken_by_a_sweep_before_it_was_locked_is_made_again(image_dir, monkeypatch):
    """The race open_part guards against: a sweep finds the new file before its lock, removes it,
    and the upload must not go on writing to a file nobody can find."""
    image_id = uuid.uuid4()
    real_flock = storage.fcntl.flock
    raced: list[str] = []

    def flock_after_a_sweep(fd: int, operation: int) -> None:
        if not raced and operation == storage.fcntl.LOCK_EX:
            raced.append("swept")
            assert storage.remove_abandoned_parts(image_id) == 1
        real_flock(fd, operation)

    monkeypatch.setattr(storage.fcntl, "flock", flock_after_a_sweep)
    part = storage.open_part(image_id)
    monkeypatch.undo()
    assert raced == ["swept"]
    assert part.path.exists()
    assert storage.upload_in_progress(image_id)
    part.close()
    assert files(image_dir) == []
