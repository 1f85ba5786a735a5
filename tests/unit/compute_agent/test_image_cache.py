"""The per-host image cache against a real local HTTP server: verified, atomic, downloaded once
however many spawns ask at the same time, and swept when nothing uses an image any more."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from compute_agent import messages as msg
from compute_agent.image_cache import ImageCache, ImageError
from compute_agent.image_transfer import TransferError
from compute_agent.instance_files import UnsafePath

from .conftest import make_qcow2, needs_qemu_img
from .image_server import ImageServer

pytestmark = needs_qemu_img

IMAGE_ID = "2f0c6a57-1c0e-4f0c-9a55-3f6d0cd7b1aa"


@pytest.fixture
def cache(tmp_path: Path) -> ImageCache:
    return ImageCache(tmp_path / "instances" / "_base")


@pytest.fixture
def served_image(tmp_path: Path, image_server: ImageServer) -> msg.ImageRef:
    data = make_qcow2(tmp_path / "source.qcow2")
    checksum = image_server.add("tiny.qcow2", data)
    return msg.ImageRef(
        id=IMAGE_ID, checksum=checksum, disk_format="qcow2", size=len(data),
        url=image_server.url("tiny.qcow2"), token="SECRET-IMAGE-TOKEN",
    )


def cache_files(cache: ImageCache) -> list[str]:
    return sorted(p.name for p in cache.directory.iterdir() if not p.name.startswith(".lock-"))


def test_an_image_is_downloaded_verified_and_named_by_id_and_checksum(
    cache: ImageCache, served_image: msg.ImageRef, image_server: ImageServer
) -> None:
    cached = cache.fetch(served_image)
    assert cached.downloaded
    assert cached.path.name == f"{IMAGE_ID}-{served_image.checksum}"
    assert cached.virtual_size == 64 * 1024**2
    assert cache_files(cache) == [cached.path.name]
    assert image_server.requests[0].token == "SECRET-IMAGE-TOKEN"


def test_the_second_fetch_is_a_cache_hit(
    cache: ImageCache, served_image: msg.ImageRef, image_server: ImageServer
) -> None:
    cache.fetch(served_image)
    again = cache.fetch(served_image)
    assert not again.downloaded
    assert image_server.gets("tiny.qcow2") == 1


def test_concurrent_spawns_of_one_image_download_it_once(
    cache: ImageCache, served_image: msg.ImageRef, image_server: ImageServer
) -> None:
    image_server.delay = 0.3  # every fetch arrives while the first download is in flight
    start = threading.Barrier(8)

    def fetch() -> Path:
        start.wait(10)
        return cache.fetch(served_image).path

    with ThreadPoolExecutor(max_workers=8) as pool:
        paths = list(pool.map(lambda _: fetch(), range(8), timeout=60))
    assert len(set(paths)) == 1
    assert image_server.gets("tiny.qcow2") == 1
    assert cache_files(cache) == [paths[0].name]


def test_a_reader_never_sees_a_partial_file_under_the_final_name(
    cache: ImageCache, served_image: msg.ImageRef, image_server: ImageServer
) -> None:
    image_server.delay = 0.5
    final = cache.directory / f"{IMAGE_ID}-{served_image.checksum}"
    seen_sizes: list[int] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            if final.exists():
                seen_sizes.append(final.stat().st_size)
            time.sleep(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        cache.fetch(served_image)
    finally:
        done.set()
        watcher.join()
    assert set(seen_sizes) <= {served_image.size}


def test_a_checksum_mismatch_is_refused_and_leaves_nothing_in_the_cache(
    cache: ImageCache, served_image: msg.ImageRef
) -> None:
    served_image.checksum = "0" * 32
    with pytest.raises(ImageError, match="checksum mismatch"):
        cache.fetch(served_image)
    assert cache_files(cache) == []


def test_a_size_mismatch_is_refused_and_leaves_nothing_in_the_cache(
    cache: ImageCache, served_image: msg.ImageRef
) -> None:
    served_image.size += 1
    with pytest.raises(ImageError, match="bytes"):
        cache.fetch(served_image)
    assert cache_files(cache) == []


def test_an_image_that_points_at_a_backing_file_is_refused(
    tmp_path: Path, cache: ImageCache, image_server: ImageServer
) -> None:
    # The classic attack: a qcow2 whose backing file is a file of the host's.
    make_qcow2(tmp_path / "innocent.qcow2")
    hostile = tmp_path / "hostile.qcow2"
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2",
         "-b", str(tmp_path / "innocent.qcow2"), str(hostile)],
        check=True, timeout=30,
    )
    data = hostile.read_bytes()
    checksum = image_server.add("hostile.qcow2", data)
    ref = msg.ImageRef(id=IMAGE_ID, checksum=checksum, size=len(data),
                       url=image_server.url("hostile.qcow2"))
    with pytest.raises(ImageError, match="backing file"):
        cache.fetch(ref)
    assert cache_files(cache) == []


def test_a_raw_image_that_claims_to_be_qcow2_is_refused(
    cache: ImageCache, image_server: ImageServer
) -> None:
    data = b"\0" * 65536
    checksum = image_server.add("raw.img", data)
    ref = msg.ImageRef(id=IMAGE_ID, checksum=checksum, disk_format="qcow2", size=len(data),
                       url=image_server.url("raw.img"))
    with pytest.raises(ImageError):
        cache.fetch(ref)
    assert cache_files(cache) == []


def test_a_refused_download_names_the_status_but_never_the_token(
    cache: ImageCache, served_image: msg.ImageRef, image_server: ImageServer
) -> None:
    image_server.required_token = "another-token"
    with pytest.raises(TransferError) as caught:
        cache.fetch(served_image)
    assert "HTTP 401" in str(caught.value)
    assert "SECRET-IMAGE-TOKEN" not in str(caught.value)
    assert cache_files(cache) == []


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/x", "/etc/passwd"])
def test_only_http_urls_are_fetched(cache: ImageCache, served_image: msg.ImageRef, url: str) -> None:
    served_image.url = url
    with pytest.raises(TransferError, match="not an http"):
        cache.fetch(served_image)
    assert cache_files(cache) == []


@pytest.mark.parametrize("image_id", ["../../etc/passwd", "a/b", ".hidden", "", "x" * 200])
def test_an_image_id_that_could_escape_the_cache_is_refused(
    cache: ImageCache, served_image: msg.ImageRef, image_id: str
) -> None:
    served_image.id = image_id
    with pytest.raises(ImageError):
        cache.fetch(served_image)


def test_an_image_without_a_checksum_cannot_be_cached(
    cache: ImageCache, served_image: msg.ImageRef
) -> None:
    served_image.checksum = ""
    with pytest.raises(ImageError, match="checksum"):
        cache.fetch(served_image)


def test_a_cache_file_replaced_by_a_symlink_out_of_the_cache_is_refused(
    tmp_path: Path, cache: ImageCache, served_image: msg.ImageRef
) -> None:
    cache.directory.mkdir(parents=True)
    outside = tmp_path / "secret"
    outside.write_text("host secret")
    (cache.directory / f"{IMAGE_ID}-{served_image.checksum}").symlink_to(outside)
    with pytest.raises(UnsafePath, match="outside"):
        cache.fetch(served_image)


def test_the_sweep_keeps_images_in_use_or_recently_used_and_removes_the_rest(
    cache: ImageCache, served_image: msg.ImageRef, image_server: ImageServer, tmp_path: Path
) -> None:
    in_use = cache.fetch(served_image).path
    other_data = make_qcow2(tmp_path / "other.qcow2", "32M")
    other_ref = msg.ImageRef(
        id="other", checksum=image_server.add("other.qcow2", other_data), size=len(other_data),
        url=image_server.url("other.qcow2"),
    )
    idle = cache.fetch(other_ref).path
    recent_ref = msg.ImageRef(
        id="recent", checksum=other_ref.checksum, size=len(other_data), url=other_ref.url
    )
    recent = cache.fetch(recent_ref).path
    hour_ago = time.time() - 7200
    for path in (in_use, idle):
        os.utime(path, (hour_ago, hour_ago))
    leftover = cache.directory / ".partial-crashed"
    leftover.write_bytes(b"half")
    os.utime(leftover, (hour_ago, hour_ago))

    removed = cache.sweep({in_use.name}, max_idle=3600)

    assert sorted(removed) == sorted([idle.name, leftover.name])
    assert cache_files(cache) == sorted([in_use.name, recent.name])
