"""What every role of the libvirt driver shares: the host's configuration and one libvirt
connection for all worker threads.

LibvirtBase is the common base of the role mixins (lifecycle, power, console, snapshot, host) that
make up compute_agent.drivers.libvirt.LibvirtDriver. Every libvirt call goes through its _call (or
_act, for one instance's domain), which holds the connection lock and survives a connection that
died under it.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import libvirt

from compute_agent.domain_xml import canonical_uuid
from compute_agent.drivers.base import Driver, DriverError
from compute_agent.image_cache import ImageCache
from compute_agent.instance_files import InstanceFiles

LOG = logging.getLogger(__name__)

DEFAULT_INSTANCES_DIR = "/var/lib/kumo/instances"

T = TypeVar("T")

# libvirt prints every error to stderr as well as raising it; we raise DriverError with the same
# text and log it where it matters, so the second copy is only noise.
libvirt.registerErrorHandler(lambda _ctx, _err: None, None)


class NoSuchInstance(DriverError):
    pass


def default_domain_type(uri: str) -> str:
    """The `<domain type>` for a URI: "test" for the test driver, "qemu" (TCG) for qemu.

    KVM is never guessed: /dev/kvm can exist and still be unusable (see platform notes), so a host
    that wants it says so explicitly.
    """
    scheme = uri.split(":", 1)[0].split("+", 1)[0].lower()
    if scheme in ("test", "qemu"):
        return scheme
    raise DriverError(f"no default domain type for libvirt URI {uri!r}; pass one explicitly")


def _error_text(exc: libvirt.libvirtError) -> str:
    return exc.get_error_message() or str(exc)


class LibvirtBase(Driver):
    """One libvirt connection shared by all worker threads, guarded by a lock and reopened when
    it dies (libvirtd restarted, remote link lost), and the host's configuration."""

    def __init__(
        self,
        uri: str,
        *,
        instances_dir: str | os.PathLike[str] = DEFAULT_INSTANCES_DIR,
        domain_type: str | None = None,
        vnc_listen: str = "127.0.0.1",
    ) -> None:
        self.uri = uri
        self.instances_dir = Path(instances_dir)
        self.domain_type = domain_type or default_domain_type(uri)
        self.vnc_listen = vnc_listen
        self.files = InstanceFiles(self.instances_dir)
        self.image_cache = ImageCache(self.files.base_dir)
        self._lock = threading.RLock()
        self._conn: libvirt.virConnect | None = None

    @property
    def has_disks(self) -> bool:
        return self.domain_type != "test"

    @property
    def scratch_dir(self) -> str:
        return os.fspath(self.files.snapshot_dir)

    def _connection(self) -> libvirt.virConnect:
        if self._conn is not None and not self._alive(self._conn):
            LOG.warning("libvirt connection to %s is dead, reconnecting", self.uri)
            self._drop_connection()
        if self._conn is None:
            try:
                self._conn = libvirt.open(self.uri)
            except libvirt.libvirtError as exc:
                raise DriverError(f"cannot connect to {self.uri}: {_error_text(exc)}") from exc
        return self._conn

    @staticmethod
    def _alive(conn: libvirt.virConnect) -> bool:
        try:
            return bool(conn.isAlive())
        except libvirt.libvirtError:
            return False

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except libvirt.libvirtError:
                pass  # it is already broken; the point is to forget it

    def _call(self, what: str, fn: Callable[[libvirt.virConnect], T]) -> T:
        """Run fn(connection) under the lock. If it fails because the connection died, run it
        once more on a fresh connection: every fn here checks real state before acting, so a
        second run is safe."""
        with self._lock:
            for attempt in (1, 2):
                conn = self._connection()
                try:
                    return fn(conn)
                except libvirt.libvirtError as exc:
                    if attempt == 1 and not self._alive(conn):
                        LOG.warning("%s: libvirt connection lost (%s), retrying", what, exc)
                        self._drop_connection()
                        continue
                    raise DriverError(f"{what} failed: {_error_text(exc)}") from exc
        raise AssertionError("unreachable")

    def close(self) -> None:
        with self._lock:
            self._drop_connection()

    @staticmethod
    def _lookup(conn: libvirt.virConnect, instance_uuid: str) -> libvirt.virDomain | None:
        try:
            return conn.lookupByUUIDString(instance_uuid)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return None
            raise

    def _act(self, what: str, instance_uuid: str, fn: Callable[[libvirt.virDomain], T]) -> T:
        """Run fn(domain) under the connection lock; a missing domain is NoSuchInstance."""
        instance_uuid = canonical_uuid(instance_uuid)

        def on(conn: libvirt.virConnect) -> T:
            domain = self._lookup(conn, instance_uuid)
            if domain is None:
                raise NoSuchInstance(f"instance {instance_uuid} has no domain on this host")
            return fn(domain)

        return self._call(f"{what} of {instance_uuid}", on)
