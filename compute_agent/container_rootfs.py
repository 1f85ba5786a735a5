"""A container's root filesystem: the image's tree, extracted once per host, and a copy-on-write
view of it per instance.

A container image is a gzip'd (or plain) tar of a root filesystem, registered with
disk_format=raw and container_format=compressed (Glance's word for an archive whose inside the
image API does not interpret): it is no disk, so none of qcow2's features apply, and libvirt's
LXC driver wants a directory. The image cache (compute_agent.image_cache) keeps the downloaded,
checksummed file as for any image; beside it, `_rootfs/<cache name>` holds the tree extracted
from it, shared read-only by every container on the host. Each instance gets an overlay mount
(lower: that tree; upper and work directories in the instance's directory), so a container
writes only its own changes and starts without copying anything.

A snapshot, backup or shelve of a container is the reverse (archive): a gzip'd tar of its merged view,
taken while the container is frozen or stopped, so it is one image of the tree as the container
sees it. Reading the merged view rather than the upper directory means no overlay internals end
up in the image: a file the container deleted is simply absent (not a whiteout device the next
extraction would have to interpret), and it needs the image's tree only through the mount.

Extraction uses tarfile's "tar" filter: an image is user data, so no member may land outside
the tree (absolute names, `..`, links pointing out), and set-id bits are dropped; other modes are
kept as the archive has them (a sticky, world-writable /tmp).
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

from compute_agent.drivers.base import DriverError
from compute_agent.image_cache import CachedImage, ImageCache
from compute_agent.instance_files import BASE_MARKER_NAME, InstanceFiles

LOG = logging.getLogger(__name__)

ROOTFS_DIR_NAME = "_rootfs"
# In the instance's directory: the merged view libvirt mounts as the container's `/`, and the
# overlay's own directories.
MERGED, UPPER, WORK = "rootfs", "rootfs.upper", "rootfs.work"
_PARTIAL = ".partial-"
_SET_ID = stat.S_ISUID | stat.S_ISGID


class RootfsError(DriverError):
    """The image is not a root filesystem archive, or the overlay cannot be made."""


def _rootfs_filter(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo | None:
    """tarfile's "tar" filter (it refuses members that would land outside the tree), but with the
    member's own mode less its set-id bits: the "tar" filter also clears the sticky bit and group
    and other write, which would leave a root filesystem's /tmp (1777) writable by root only."""
    safe = tarfile.tar_filter(member, path)
    if safe is None or member.mode is None:
        return safe
    return safe.replace(mode=member.mode & ~_SET_ID, deep=False)


def base_tree(cache: ImageCache, cached: CachedImage) -> Path:
    """The tree extracted from the cached image file, extracting it first if need be."""
    trees = cache.directory / ROOTFS_DIR_NAME
    tree = trees / cached.path.name
    if tree.is_dir():
        return tree
    trees.mkdir(mode=0o755, parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=_PARTIAL, dir=trees))
    try:
        try:
            with tarfile.open(cached.path, "r:*") as archive:
                archive.extractall(partial, filter=_rootfs_filter, numeric_owner=True)
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise RootfsError(f"image {cached.path.name} is not a root filesystem archive: "
                              f"{exc}") from None
        if not (partial / "sbin" / "init").exists() and not (partial / "bin" / "sh").exists():
            raise RootfsError(f"image {cached.path.name} has neither /sbin/init nor /bin/sh")
        partial.chmod(0o755)
        try:
            os.rename(partial, tree)
        except OSError:
            if not tree.is_dir():
                raise
            # Another spawn extracted it meanwhile: theirs is as good.
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    LOG.info("image %s extracted as a root filesystem", cached.path.name)
    return tree


def merged_dir(files: InstanceFiles, instance_uuid: str) -> Path:
    return files.path(instance_uuid, MERGED)


def mount_overlay(files: InstanceFiles, instance_uuid: str, lower: Path) -> Path:
    """The instance's merged view of `lower`, mounted unless it already is (a spawn retried, a
    start after the host rebooted). Its changes survive stop and start; a delete drops them."""
    merged = merged_dir(files, instance_uuid)
    if os.path.ismount(merged):
        return merged
    upper, work = files.path(instance_uuid, UPPER), files.path(instance_uuid, WORK)
    for directory in (merged, upper, work):
        directory.mkdir(mode=0o755, parents=True, exist_ok=True)
    options = f"lowerdir={lower},upperdir={upper},workdir={work}"
    done = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", options, str(merged)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RootfsError(f"cannot mount the root filesystem of {instance_uuid}: "
                          f"{done.stderr.strip() or done.returncode}")
    return merged


def unmount(files: InstanceFiles, instance_uuid: str) -> None:
    """Unmount the instance's view (before its directory is removed: removing files through a
    mounted overlay would only write whiteouts)."""
    merged = merged_dir(files, instance_uuid)
    if not os.path.ismount(merged):
        return
    done = subprocess.run(["umount", str(merged)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        # Busy (a process of the host still inside): detach it now, the kernel frees it later.
        subprocess.run(["umount", "-l", str(merged)], capture_output=True, check=False)
    if os.path.ismount(merged):
        raise RootfsError(f"cannot unmount the root filesystem of {instance_uuid}")


def ensure_mounted(files: InstanceFiles, cache: ImageCache, instance_uuid: str) -> Path:
    """The instance's merged view, mounted again over the tree its base marker names if need
    be (a stopped container on a host that rebooted since)."""
    marker = files.path(instance_uuid, BASE_MARKER_NAME)
    if not marker.exists():
        raise RootfsError(f"container {instance_uuid} has no root filesystem on this host")
    return mount_overlay(files, instance_uuid, tree_of_marker(cache, marker))


def tree_of_marker(cache: ImageCache, marker: Path) -> Path:
    """The extracted tree an instance's base marker names."""
    return cache.directory / ROOTFS_DIR_NAME / marker.read_text().strip()


def archive(tree: Path, target: Path, then: Callable[[], None] | None = None) -> int:
    """Write `tree` as a gzip'd tar to `target` (an image that base_tree extracts again); its
    size. The caller keeps the tree still (the container frozen or stopped) until `then` is
    called, once the tree has been read and before the compression, which needs it no more: a
    container is frozen for the read only. A file changing while it is read fails the archive
    rather than leave a torn copy in an image."""
    # GNU tar rather than tarfile: it is C, stores hard links, long names and sparse files, and
    # says "file changed as we read it" (status 1), which a consistent copy must not see.
    # Numeric owners, as base_tree extracts them: the container's uids are not the host's names.
    plain = target.with_name(target.name + ".tar-partial")
    try:
        done = subprocess.run(
            ["tar", "-C", os.fspath(tree), "--numeric-owner", "--sort=name", "-cf",
             os.fspath(plain), "."],
            capture_output=True, text=True, check=False)
        if then is not None:
            then()
        if done.returncode != 0:
            raise RootfsError(f"cannot archive the root filesystem {tree}: "
                              f"{done.stderr.strip()[-500:] or done.returncode}")
        # -n: no name or time in the header, so the same tree gives the same bytes.
        with target.open("wb") as out:
            zipped = subprocess.run(["gzip", "-n", "-c", os.fspath(plain)], stdout=out,
                                    stderr=subprocess.PIPE, text=True, check=False)
        if zipped.returncode != 0:
            raise RootfsError(f"cannot compress the archive of {tree}: "
                              f"{zipped.stderr.strip()[-500:] or zipped.returncode}")
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    finally:
        plain.unlink(missing_ok=True)
    return target.stat().st_size


def unused_trees(cache: ImageCache) -> list[Path]:
    """Extracted trees whose image file the cache no longer holds (the sweep removed it)."""
    trees = cache.directory / ROOTFS_DIR_NAME
    if not trees.is_dir():
        return []
    return [t for t in trees.iterdir()
            if t.name.startswith(_PARTIAL) or not (cache.directory / t.name).exists()]
