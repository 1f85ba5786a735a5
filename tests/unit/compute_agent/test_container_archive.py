"""A container's snapshot: its root filesystem written as a gzip'd tar (container_rootfs.archive)
that the next host extracts as a container image (container_rootfs.base_tree) with the same
files, links, modes and numeric owners; a tree that cannot be read leaves no half archive."""

from __future__ import annotations

import os
import socket
import stat
import tarfile
from pathlib import Path

import pytest

from compute_agent import container_rootfs
from compute_agent.image_cache import CachedImage, ImageCache
from compute_agent.instance_files import InstanceFiles

UUID = "11111111-2222-4333-8444-555555555555"


def _tree(root: Path) -> Path:
    for d in ("sbin", "bin", "etc", "tmp", "var/empty"):
        (root / d).mkdir(parents=True)
    (root / "sbin" / "init").write_text("#!/bin/sh\necho changed\n")
    (root / "sbin" / "init").chmod(0o755)
    (root / "bin" / "busybox").write_bytes(b"\x7fELF" + bytes(4096))
    (root / "bin" / "sh").symlink_to("busybox")
    os.link(root / "bin" / "busybox", root / "bin" / "ash")
    (root / "etc" / "note").write_text("written in the container\n")
    os.chown(root / "etc" / "note", 1234, 4321)
    (root / "etc" / "shared").write_text("group-writable\n")
    (root / "etc" / "shared").chmod(0o664)
    (root / "tmp").chmod(0o1777)
    return root


def test_the_archive_extracts_as_a_container_image_with_the_same_tree(tmp_path):
    tree = _tree(tmp_path / "merged")
    cache = ImageCache(tmp_path / "_base")
    cache.directory.mkdir()
    target = cache.directory / "snapshot-1"
    size = container_rootfs.archive(tree, target)
    assert size == target.stat().st_size > 0
    with tarfile.open(target, "r:gz") as archive:
        names = set(archive.getnames())
        note = archive.getmember("./etc/note")
        assert (note.uid, note.gid, note.uname) == (1234, 4321, "")  # numeric, no host names
        assert archive.getmember("./tmp").mode == 0o1777
        # One file stored, its second name a hard link to it, not a second copy.
        assert [archive.getmember(f"./bin/{n}").islnk() for n in ("ash", "busybox")] == [
            False, True]
    assert {"./sbin/init", "./bin/sh", "./var/empty", "./etc/note"} <= names

    extracted = container_rootfs.base_tree(
        cache, CachedImage(target, "raw", size, downloaded=True))
    assert (extracted / "etc" / "note").read_text() == "written in the container\n"
    assert (extracted / "etc" / "note").stat().st_uid == 1234
    assert os.readlink(extracted / "bin" / "sh") == "busybox"
    assert os.access(extracted / "sbin" / "init", os.X_OK)
    assert (extracted / "bin" / "ash").stat().st_ino == (extracted / "bin" / "busybox").stat().st_ino
    assert (extracted / "var" / "empty").is_dir()
    # /tmp stays sticky and world-writable through the round trip (tarfile's "tar" filter alone
    # would make it 0755).
    assert stat.S_IMODE((extracted / "tmp").stat().st_mode) == 0o1777
    assert stat.S_IMODE((extracted / "etc" / "shared").stat().st_mode) == 0o664


def test_a_socket_in_the_tree_is_left_out(tmp_path):
    tree = _tree(tmp_path / "merged")
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(os.fspath(tree / "tmp" / "daemon.sock"))
        container_rootfs.archive(tree, tmp_path / "out.tar.gz")
    with tarfile.open(tmp_path / "out.tar.gz") as archive:
        assert "./tmp/daemon.sock" not in archive.getnames()


def test_an_unreadable_tree_fails_and_leaves_no_archive(tmp_path):
    target = tmp_path / "out.tar.gz"
    thawed = []
    with pytest.raises(container_rootfs.RootfsError, match="cannot archive"):
        container_rootfs.archive(tmp_path / "missing", target, then=lambda: thawed.append(1))
    assert not target.exists()
    assert thawed == [1]  # a failed read still lets the container run again
    assert list(tmp_path.iterdir()) == []  # nor is the uncompressed tar left behind


def test_the_container_runs_again_once_its_tree_is_read_before_the_compression(tmp_path):
    """The tree is needed still only while tar reads it: `then` (the snapshot's resume) is called
    with the whole tree in the uncompressed tar and the compressed image not written yet."""
    tree = _tree(tmp_path / "merged")
    target = tmp_path / "out.tar.gz"
    seen = []

    def then() -> None:
        (partial,) = tmp_path.glob("out.tar.gz.tar-partial")
        with tarfile.open(partial) as read:
            seen.append("./etc/note" in read.getnames())
        seen.append(target.exists() and target.stat().st_size > 0)
        (tree / "etc" / "note").write_text("changed after the read\n")

    container_rootfs.archive(tree, target, then=then)

    assert seen == [True, False]
    with tarfile.open(target, "r:gz") as archive:
        note = archive.extractfile("./etc/note")
        assert note is not None and note.read() == b"written in the container\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["merged", "out.tar.gz"]


def test_a_container_with_no_root_filesystem_here_is_not_archived(tmp_path):
    """Nothing made by a spawn on this host (no base marker): no empty tar passes for it."""
    files = InstanceFiles(tmp_path / "instances")
    files.make_instance_dir(UUID)
    with pytest.raises(container_rootfs.RootfsError, match="no root filesystem on this host"):
        container_rootfs.ensure_mounted(files, ImageCache(tmp_path / "_base"), UUID)
