"""How a cold migration's disk travels: through the destination's own libvirt, nothing else.

Each host that takes migrations keeps a libvirt storage pool, POOL_NAME, over
`<instances>/_incoming` (its agent defines it at start, init_host). The source creates a volume
there named after the instance and uploads its disk file into it with a libvirt stream
(virStorageVolUpload) on the connection it already has to the destination: no ssh, no shared
storage, no other port. The destination's FINISH_MIGRATION then moves the file into the
instance's directory.
"""

from __future__ import annotations

import logging
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import libvirt

from compute_agent.drivers.base import DriverError

LOG = logging.getLogger(__name__)

POOL_NAME = "kumo-incoming"


def _pool_xml(path: Path) -> str:
    pool = ET.Element("pool", type="dir")
    ET.SubElement(pool, "name").text = POOL_NAME
    target = ET.SubElement(pool, "target")
    ET.SubElement(target, "path").text = os.fspath(path)
    return ET.tostring(pool, encoding="unicode")


def _volume_xml(name: str, size: int) -> str:
    # Declared raw: libvirt then only makes a sparse file of that size, which the upload fills
    # with the disk's bytes as they are (a qcow2 overlay, not converted).
    volume = ET.Element("volume")
    ET.SubElement(volume, "name").text = name
    ET.SubElement(volume, "capacity", unit="bytes").text = str(size)
    ET.SubElement(volume, "allocation", unit="bytes").text = "0"
    target = ET.SubElement(volume, "target")
    ET.SubElement(target, "format", type="raw")
    permissions = ET.SubElement(target, "permissions")
    ET.SubElement(permissions, "mode").text = "0600"
    return ET.tostring(volume, encoding="unicode")


def pool_path(pool: libvirt.virStoragePool) -> str:
    return ET.fromstring(pool.XMLDesc(0)).findtext("./target/path", "")


def ensure_pool(conn: libvirt.virConnect, path: Path) -> None:
    """Define (if missing or pointing elsewhere), start and autostart this host's pool."""
    path.mkdir(mode=0o711, parents=True, exist_ok=True)
    try:
        pool = conn.storagePoolLookupByName(POOL_NAME)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() != libvirt.VIR_ERR_NO_STORAGE_POOL:
            raise
        pool = None
    if pool is not None and pool_path(pool) != os.fspath(path):
        LOG.warning("storage pool %s pointed at %s; redefining it over %s",
                    POOL_NAME, pool_path(pool), path)
        if pool.isActive():
            pool.destroy()
        pool.undefine()
        pool = None
    if pool is None:
        pool = conn.storagePoolDefineXML(_pool_xml(path), 0)
        LOG.info("defined storage pool %s over %s", POOL_NAME, path)
    if not pool.isActive():
        pool.create(0)
    pool.setAutostart(1)


def refresh(conn: libvirt.virConnect) -> None:
    """Make the pool forget files moved out of it behind libvirt's back (a finished migration)."""
    try:
        pool = conn.storagePoolLookupByName(POOL_NAME)
        if pool.isActive():
            pool.refresh(0)
    except libvirt.libvirtError as exc:
        LOG.warning("could not refresh storage pool %s: %s", POOL_NAME, exc)


def upload(conn: libvirt.virConnect, uri: str, name: str, source: Path) -> int:
    """Send the file `source` into volume `name` of the pool on `conn` (the destination, reached
    at `uri`), replacing what an earlier attempt left; return its size. On failure the partial
    volume is deleted when the destination still answers."""
    try:
        pool = conn.storagePoolLookupByName(POOL_NAME)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_STORAGE_POOL:
            raise DriverError(
                f"{uri} has no storage pool {POOL_NAME}: its agent does not take migrations "
                "(it needs --migration-uri)"
            ) from exc
        raise
    if not pool.isActive():
        pool.create(0)
    pool.refresh(0)
    try:
        pool.storageVolLookupByName(name).delete(0)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() != libvirt.VIR_ERR_NO_STORAGE_VOL:
            raise
    size = source.stat().st_size
    volume = pool.createXML(_volume_xml(name, size), 0)
    stream = conn.newStream(0)
    try:
        volume.upload(stream, 0, size, 0)
        with open(source, "rb") as data:
            stream.sendAll(lambda _stream, nbytes, opaque: opaque.read(nbytes), data)
        stream.finish()
    except BaseException:
        _abandon(stream, volume)
        raise
    return size


def _abandon(stream: libvirt.virStream, volume: libvirt.virStorageVol) -> None:
    for cleanup in (stream.abort, lambda: volume.delete(0)):
        try:
            cleanup()
        except libvirt.libvirtError:
            pass  # the destination is gone or the stream already ended: nothing more to undo
