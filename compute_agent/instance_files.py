"""Where an instance's files live on this host, and the rule that no path ever leaves that place.

    <instances_dir>/
        _base/<image id>-<md5>          the image cache, shared by instances (compute_agent.image_cache)
        _snapshots/                     snapshot copies while they upload
        _incoming/<uuid>.disk           a cold migration's disk as it arrives from the source (a
                                        libvirt storage pool, so the source can upload into it)
        _vnc                            a link to the VNC socket directory, when there is one
        <uuid>/disk                     the instance's own qcow2 overlay on a cached base
        <uuid>/disk.config              its config drive (ISO 9660, label config-2)
        <uuid>/console.log              its serial console, written by libvirt's virtlogd
        <uuid>/base                     the cache file name its disk is built on (for the sweep)

Every path handed to qemu-img or libvirt goes through `contained()`: a symlink planted in the tree,
or a hostile name, must not make us read or overwrite a file elsewhere on the host.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from compute_agent.domain_xml import canonical_uuid
from compute_agent.drivers.base import DriverError

BASE_DIR_NAME = "_base"
SNAPSHOT_DIR_NAME = "_snapshots"
INCOMING_DIR_NAME = "_incoming"
VNC_LINK_NAME = "_vnc"
INCOMING_DISK_SUFFIX = ".disk"
DISK_NAME = "disk"
CONFIG_DRIVE_NAME = "disk.config"
CONSOLE_LOG_NAME = "console.log"
BASE_MARKER_NAME = "base"


class UnsafePath(DriverError):
    """A path would resolve outside the directories the agent owns."""


def contained(path: str | os.PathLike[str], *roots: str | os.PathLike[str]) -> Path:
    """`path` with symlinks resolved, if it lies inside one of `roots` (also resolved); otherwise
    UnsafePath. The path itself need not exist yet."""
    real = Path(os.path.realpath(path))
    for root in roots:
        real_root = Path(os.path.realpath(root))
        if real != real_root and real_root in real.parents:
            return real
    raise UnsafePath(f"refusing to use {os.fspath(path)!r}: it resolves outside the agent's directories")


class InstanceFiles:
    def __init__(self, instances_dir: str | os.PathLike[str]) -> None:
        self.root = Path(instances_dir)

    @property
    def base_dir(self) -> Path:
        return self.root / BASE_DIR_NAME

    @property
    def snapshot_dir(self) -> Path:
        return self.root / SNAPSHOT_DIR_NAME

    @property
    def incoming_dir(self) -> Path:
        return self.root / INCOMING_DIR_NAME

    @property
    def vnc_link(self) -> Path:
        return self.root / VNC_LINK_NAME

    def ensure_dirs(self) -> None:
        # 0755: under qemu:///system qemu runs as another user and must traverse these to its disks.
        for directory in (self.root, self.base_dir, self.snapshot_dir):
            directory.mkdir(mode=0o755, parents=True, exist_ok=True)

    def instance_dir(self, instance_uuid: str) -> Path:
        return contained(self.root / canonical_uuid(instance_uuid), self.root)

    def path(self, instance_uuid: str, name: str) -> Path:
        """A file of the instance, checked to stay inside the instance's own directory."""
        directory = self.instance_dir(instance_uuid)
        return contained(directory / name, directory)

    def disk(self, instance_uuid: str) -> Path:
        return self.path(instance_uuid, DISK_NAME)

    def config_drive(self, instance_uuid: str) -> Path:
        return self.path(instance_uuid, CONFIG_DRIVE_NAME)

    def console_log(self, instance_uuid: str) -> Path:
        return self.path(instance_uuid, CONSOLE_LOG_NAME)

    @staticmethod
    def incoming_disk_name(instance_uuid: str) -> str:
        """The storage volume (file) name a cold migration's disk arrives under."""
        return canonical_uuid(instance_uuid) + INCOMING_DISK_SUFFIX

    def incoming_disk(self, instance_uuid: str) -> Path:
        return contained(self.incoming_dir / self.incoming_disk_name(instance_uuid),
                         self.incoming_dir)

    def make_instance_dir(self, instance_uuid: str) -> Path:
        self.ensure_dirs()
        directory = self.instance_dir(instance_uuid)
        directory.mkdir(mode=0o755, exist_ok=True)
        return directory

    def ensure_vnc_link(self, socket_dir: str | os.PathLike[str]) -> Path:
        """The `_vnc` link to `socket_dir`, made or corrected. Guests name their VNC socket
        through it (compute_agent.drivers.libvirt.connection says why)."""
        self.ensure_dirs()
        link, target = self.vnc_link, os.fspath(socket_dir)
        if link.is_symlink() and os.readlink(link) == target:
            return link
        if link.exists() and not link.is_symlink():
            raise UnsafePath(f"{os.fspath(link)!r} is not a link; the agent will not replace it")
        partial = self.root / f".{VNC_LINK_NAME}.partial"
        partial.unlink(missing_ok=True)
        partial.symlink_to(target)
        os.replace(partial, link)
        return link

    def remove_instance_dir(self, instance_uuid: str) -> None:
        """Remove the instance's directory and any disk that arrived for it."""
        incoming = self.incoming_dir / self.incoming_disk_name(instance_uuid)
        if incoming.is_symlink() or incoming.is_file():
            incoming.unlink()
        link = self.root / canonical_uuid(instance_uuid)
        if link.is_symlink():
            link.unlink()  # remove the planted link itself, never what it points to
            return
        directory = self.instance_dir(instance_uuid)
        if directory.exists():
            shutil.rmtree(directory)

    def record_base(self, instance_uuid: str, base: Path) -> None:
        self.path(instance_uuid, BASE_MARKER_NAME).write_text(base.name + "\n")

    def bases_in_use(self) -> set[str]:
        """Cache file names that some instance directory on this host is built on."""
        used: set[str] = set()
        if not self.root.is_dir():
            return used
        for entry in self.root.iterdir():
            if entry.name.startswith("_") or not entry.is_dir() or entry.is_symlink():
                continue
            marker = entry / BASE_MARKER_NAME
            try:
                used.add(marker.read_text().strip())
            except OSError:
                continue
        return used
