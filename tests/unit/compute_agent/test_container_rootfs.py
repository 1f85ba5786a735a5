"""A container image's tree: extracted once, safely, and forgotten when its image file goes."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from compute_agent import container_rootfs
from compute_agent.image_cache import CachedImage, ImageCache


def _archive(path: Path, members: dict[str, bytes | None], *, mode: int = 0o755,
             extra: list[tarfile.TarInfo] = ()) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size, info.mode = len(data), mode
                tar.addfile(info, io.BytesIO(data))
        for info in extra:
            tar.addfile(info)
    return path


def _cached(tmp_path: Path, name: str, **kwargs) -> tuple[ImageCache, CachedImage]:
    cache = ImageCache(tmp_path / "_base")
    cache.directory.mkdir()
    path = _archive(cache.directory / name, **kwargs)
    return cache, CachedImage(path, "raw", path.stat().st_size, downloaded=True)


def test_the_tree_is_extracted_once_beside_the_cache(tmp_path):
    cache, cached = _cached(tmp_path, "img-1", members={
        "sbin": None, "sbin/init": b"#!/bin/sh\necho hi\n", "etc": None})
    tree = container_rootfs.base_tree(cache, cached)
    assert tree == cache.directory / "_rootfs" / "img-1"
    assert (tree / "sbin" / "init").read_bytes() == b"#!/bin/sh\necho hi\n"
    assert os.access(tree / "sbin" / "init", os.X_OK)
    (tree / "marker").write_text("kept")
    assert container_rootfs.base_tree(cache, cached) == tree
    assert (tree / "marker").exists()  # not extracted again
    assert container_rootfs.unused_trees(cache) == []
    cached.path.unlink()  # the cache's sweep removed the image
    assert container_rootfs.unused_trees(cache) == [tree]


def test_set_id_bits_are_dropped(tmp_path):
    cache, cached = _cached(tmp_path, "img-2", members={"bin": None, "bin/sh": b"x"},
                            mode=0o4755)
    mode = (container_rootfs.base_tree(cache, cached) / "bin" / "sh").stat().st_mode
    assert not mode & stat.S_ISUID


def test_a_member_escaping_the_tree_is_refused_and_nothing_is_left(tmp_path):
    escape = tarfile.TarInfo("../outside")
    cache, cached = _cached(tmp_path, "img-3", members={"sbin": None, "sbin/init": b"x"},
                            extra=[escape])
    with pytest.raises(container_rootfs.RootfsError, match="not a root filesystem archive"):
        container_rootfs.base_tree(cache, cached)
    assert not (cache.directory / "outside").exists()
    assert list((cache.directory / "_rootfs").iterdir()) == []


def test_an_archive_without_init_or_shell_is_refused(tmp_path):
    cache, cached = _cached(tmp_path, "img-4", members={"etc": None, "etc/motd": b"hi"})
    with pytest.raises(container_rootfs.RootfsError, match="neither /sbin/init nor /bin/sh"):
        container_rootfs.base_tree(cache, cached)


def test_a_file_that_is_no_archive_is_refused(tmp_path):
    cache = ImageCache(tmp_path / "_base")
    cache.directory.mkdir()
    path = cache.directory / "img-5"
    path.write_bytes(b"QFI\xfb" + b"\0" * 1020)  # a qcow2 header, say
    with pytest.raises(container_rootfs.RootfsError):
        container_rootfs.base_tree(cache, CachedImage(path, "raw", 1024, downloaded=True))
