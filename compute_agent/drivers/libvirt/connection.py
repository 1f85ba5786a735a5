"""What every role of the libvirt driver shares: the host's configuration and one libvirt
connection for all worker threads.

LibvirtBase is the common base of the role mixins (lifecycle, power, console, snapshot, host,
live and cold migration) that make up compute_agent.drivers.libvirt.LibvirtDriver. Every libvirt
call goes through its _call (or _act, for one instance's domain), which holds the connection lock
and survives a connection that died under it; the one exception is a live migration's own
long-running call, which must not hold every other operation up (live_migration.py).
"""

from __future__ import annotations

import grp
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import libvirt

from compute_agent import messages as msg
from compute_agent.domain_xml import canonical_uuid
from compute_agent.drivers.base import Driver, DriverError
from compute_agent.drivers.libvirt import peers
from compute_agent.drivers.libvirt.errors import error_text
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
    """The `<domain type>` for a URI: "test" for the test driver, "qemu" (TCG) for qemu, "lxc"
    for containers.

    KVM is never guessed: /dev/kvm can exist and still be unusable (see platform notes), so a host
    that wants it says so explicitly.
    """
    scheme = uri.split(":", 1)[0].split("+", 1)[0].lower()
    if scheme in ("test", "qemu", "lxc"):
        return scheme
    raise DriverError(f"no default domain type for libvirt URI {uri!r}; pass one explicitly")


QEMU_GROUP = "libvirt-qemu"


def _qemu_group() -> int | None:
    try:
        return grp.getgrnam(QEMU_GROUP).gr_gid
    except KeyError:
        return None


@dataclass
class LiveMigrationJob:
    """A live migration this driver has running: whether it paused the guest to converge."""

    paused_to_converge: bool = False


def running_domains(conn: libvirt.virConnect, what: str) -> list[libvirt.virDomain]:
    """The domains running on `conn`; none, said in the log with `what` they were listed for,
    when libvirt cannot list them (the checks on a new connection: the next one looks again)."""
    try:
        return conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)
    except libvirt.libvirtError as exc:
        LOG.warning("cannot list the running containers %s: %s", what, exc)
        return []


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
        vnc_socket_dir: str | os.PathLike[str] | None = None,
        takes_migrations: bool = False,
    ) -> None:
        self.uri = uri
        self.instances_dir = Path(instances_dir)
        self.domain_type = domain_type or default_domain_type(uri)
        self.vnc_listen = vnc_listen
        self.vnc_socket_dir = Path(vnc_socket_dir) if vnc_socket_dir is not None else None
        # Other hosts may send disks here (init_host defines the storage pool they land in).
        self.takes_migrations = takes_migrations
        self.files = InstanceFiles(self.instances_dir)
        self.image_cache = ImageCache(self.files.base_dir)
        self._lock = threading.RLock()
        self._conn: libvirt.virConnect | None = None
        # The live migrations this driver runs, by instance (drivers/libvirt/live_migration.py).
        self._migrations: dict[str, LiveMigrationJob] = {}
        self._migrations_lock = threading.Lock()

    @property
    def has_disks(self) -> bool:
        return self.domain_type != "test"

    @property
    def is_container(self) -> bool:
        """A container host (lxc://): guests are containers (drivers/libvirt/containers.py)."""
        return self.domain_type == "lxc"

    # Where a container's lifecycle differs from a VM's; a VM host does nothing here
    # (drivers/libvirt/containers.py).
    def _container_xml(self, request: msg.SpawnRequest) -> str:
        raise DriverError(f"{self.uri} is not a container host")

    def _sweep_rootfs_trees(self) -> list[str]:
        return []

    def _container_starting(self, instance_uuid: str) -> None:
        pass

    def _container_started(self, domain: libvirt.virDomain) -> None:
        pass

    def _container_removed(self, instance_uuid: str) -> None:
        pass

    def _shutdown(self, domain: libvirt.virDomain) -> None:
        domain.shutdown()

    @property
    def scratch_dir(self) -> str:
        return os.fspath(self.files.snapshot_dir)

    def vnc_socket_path(self, instance_uuid: str) -> str | None:
        """Where the guest's VNC server listens, as its domain names it: None for a TCP port.

        The domain names the socket through `<instances>/_vnc`, a link to the socket directory,
        never the directory itself. Every host keeps its instances directory at the same path,
        so a live migration carries a name that means "this host's socket directory" wherever
        the guest lands. Naming the directory would give the destination's qemu the source's
        path: on hosts that share /tmp (simulated ones) it would take the source's socket over,
        and the source's qemu would delete it on its way out.
        """
        if self.vnc_socket_dir is None:
            return None
        return os.fspath(self.files.vnc_link / f"{canonical_uuid(instance_uuid)}.vnc")

    def reported_vnc_socket(self, path: str) -> str:
        """The socket a domain listens on as the console relay opens it: through the link's
        target, the socket directory, which is the same from every namespace."""
        link = os.fspath(self.files.vnc_link)
        if self.vnc_socket_dir is not None and os.path.dirname(path) == link:
            return os.fspath(self.vnc_socket_dir / os.path.basename(path))
        return path

    def _ensure_vnc_socket_dir(self) -> None:
        """The socket directory, writable by qemu (a user of group libvirt-qemu, where there is
        one: the platform notes' "Permission denied" pitfall), and the link guests name it by."""
        if self.vnc_socket_dir is None:
            return
        try:
            self.vnc_socket_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
            group = _qemu_group()
            if group is not None and os.geteuid() == 0:
                os.chown(self.vnc_socket_dir, -1, group)
                self.vnc_socket_dir.chmod(0o775)
            self.files.ensure_vnc_link(self.vnc_socket_dir)
        except OSError as exc:
            raise DriverError(f"cannot prepare the VNC socket directory: {exc}") from exc

    def _remove_vnc_socket(self, instance_uuid: str) -> None:
        """A socket its qemu left behind (qemu does not always delete it when it exits)."""
        if self.vnc_socket_dir is None:
            return
        stale = self.vnc_socket_dir / f"{canonical_uuid(instance_uuid)}.vnc"
        if stale.is_socket():
            stale.unlink(missing_ok=True)

    def _connection(self) -> libvirt.virConnect:
        if self._conn is not None and not self._alive(self._conn):
            LOG.warning("libvirt connection to %s is dead, reconnecting", self.uri)
            self._drop_connection()
        if self._conn is None:
            if self.has_disks:
                # Before the first connection: keepalive needs libvirt's event loop.
                peers.ensure_event_loop()
            try:
                self._conn = libvirt.open(self.uri)
            except libvirt.libvirtError as exc:
                raise DriverError(f"cannot connect to {self.uri}: {error_text(exc)}") from exc
            self._connected(self._conn)
        return self._conn

    def _connected(self, conn: libvirt.virConnect) -> None:
        """A new connection is open (the guest-events role watches it: events.py)."""

    def _disconnecting(self, conn: libvirt.virConnect) -> None:
        """The connection is about to be closed."""

    @staticmethod
    def _alive(conn: libvirt.virConnect) -> bool:
        try:
            return bool(conn.isAlive())
        except libvirt.libvirtError:
            return False

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._disconnecting(conn)
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
                    raise DriverError(f"{what} failed: {error_text(exc)}") from exc
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
