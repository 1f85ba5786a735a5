"""The libvirt driver: the only module of the agent that imports libvirt.

It works on any libvirt URI. `test:///default` is libvirt's in-process test hypervisor, the everyday
double: no daemon, one state shared by all connections in the process, and that state is dropped
when the process's last connection to it closes (so close() on the test driver forgets every
domain, as a host reboot would). `qemu:///system` runs real guests.

Domains are persistent (define, then start): if qemu dies, a persistent domain stays visible as
shut off/crashed instead of vanishing, so the reconciler can still see it.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import libvirt

from compute_agent import messages as msg
from compute_agent.domain_xml import build_domain_xml, canonical_uuid
from compute_agent.drivers.base import Driver, DriverError, HostInfo

LOG = logging.getLogger(__name__)

DEFAULT_INSTANCES_DIR = "/var/lib/kumo/instances"

T = TypeVar("T")

# libvirt prints every error to stderr as well as raising it; we raise DriverError with the same
# text and log it where it matters, so the second copy is only noise.
libvirt.registerErrorHandler(lambda _ctx, _err: None, None)

_POWER_STATES = {
    libvirt.VIR_DOMAIN_NOSTATE: msg.POWER_NOSTATE,
    libvirt.VIR_DOMAIN_RUNNING: msg.POWER_RUNNING,
    # Blocked on I/O is still a running guest.
    libvirt.VIR_DOMAIN_BLOCKED: msg.POWER_RUNNING,
    libvirt.VIR_DOMAIN_PAUSED: msg.POWER_PAUSED,
    libvirt.VIR_DOMAIN_SHUTDOWN: msg.POWER_SHUTDOWN,
    libvirt.VIR_DOMAIN_SHUTOFF: msg.POWER_SHUTDOWN,
    libvirt.VIR_DOMAIN_CRASHED: msg.POWER_CRASHED,
    libvirt.VIR_DOMAIN_PMSUSPENDED: msg.POWER_SUSPENDED,
}

# Newest first: the test driver and older daemons reject the flags they do not know (with
# VIR_ERR_INVALID_ARG), and a plain undefine() is the last resort.
_UNDEFINE_FLAG_SETS = (
    libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
    | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
    | libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA
    | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM,
    libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA,
)


def power_state_from_libvirt(state: int, reason: int = 0) -> str:
    """Map libvirt's (state, reason) pair to a contract power state name.

    A persistent domain whose qemu was killed shows as SHUTOFF with reason CRASHED; it is reported
    as crashed so that the control plane can tell it from a guest that was shut down on purpose.
    """
    if state == libvirt.VIR_DOMAIN_SHUTOFF and reason == libvirt.VIR_DOMAIN_SHUTOFF_CRASHED:
        return msg.POWER_CRASHED
    return _POWER_STATES.get(state, msg.POWER_NOSTATE)


def default_domain_type(uri: str) -> str:
    """The `<domain type>` for a URI: "test" for the test driver, "qemu" (TCG) for qemu.

    KVM is never guessed: /dev/kvm can exist and still be unusable (see platform notes), so a host
    that wants it says so explicitly.
    """
    scheme = uri.split(":", 1)[0].split("+", 1)[0].lower()
    if scheme in ("test", "qemu"):
        return scheme
    raise DriverError(f"no default domain type for libvirt URI {uri!r}; pass one explicitly")


def _is_instance_domain_name(name: str) -> bool:
    try:
        return str(uuid.UUID(name)) == name
    except ValueError:
        return False


def _error_text(exc: libvirt.libvirtError) -> str:
    return exc.get_error_message() or str(exc)


class LibvirtDriver(Driver):
    """One libvirt connection shared by all worker threads, guarded by a lock and reopened when
    it dies (libvirtd restarted, remote link lost)."""

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
        self._lock = threading.RLock()
        self._conn: libvirt.virConnect | None = None

    # --- the connection -------------------------------------------------------------------

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

    # --- domains --------------------------------------------------------------------------

    @staticmethod
    def _lookup(conn: libvirt.virConnect, instance_uuid: str) -> libvirt.virDomain | None:
        try:
            return conn.lookupByUUIDString(instance_uuid)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return None
            raise

    @staticmethod
    def _state(domain: libvirt.virDomain) -> str:
        state, reason = domain.state()
        return power_state_from_libvirt(state, reason)

    def spawn(self, request: msg.SpawnRequest) -> str:
        instance_uuid = canonical_uuid(request.instance_uuid)
        xml = build_domain_xml(request, domain_type=self.domain_type, vnc_listen=self.vnc_listen)

        def spawn_on(conn: libvirt.virConnect) -> str:
            domain = self._lookup(conn, instance_uuid)
            if domain is not None and domain.isActive():
                LOG.info("domain %s is already active, leaving it as it is", instance_uuid)
                return self._state(domain)
            # Defining again over an inactive domain refreshes its definition, so a retried spawn
            # boots what this request asks for rather than what an earlier attempt wrote.
            domain = conn.defineXML(xml)
            try:
                domain.create()
            except libvirt.libvirtError:
                if not domain.isActive():
                    raise
                LOG.info("domain %s was started concurrently", instance_uuid)
            return self._state(domain)

        return self._call(f"spawn of {instance_uuid}", spawn_on)

    def destroy(self, instance_uuid: str) -> None:
        instance_uuid = canonical_uuid(instance_uuid)

        def destroy_on(conn: libvirt.virConnect) -> None:
            domain = self._lookup(conn, instance_uuid)
            if domain is None:
                return
            try:
                if domain.isActive():
                    domain.destroy()
                if domain.isPersistent():
                    self._undefine(domain)
            except libvirt.libvirtError as exc:
                # Something else removed it between our checks and our action: the goal is met.
                if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                    raise

        self._call(f"destroy of {instance_uuid}", destroy_on)

    @staticmethod
    def _undefine(domain: libvirt.virDomain) -> None:
        for flags in _UNDEFINE_FLAG_SETS:
            try:
                domain.undefineFlags(flags)
                return
            except libvirt.libvirtError as exc:
                if exc.get_error_code() != libvirt.VIR_ERR_INVALID_ARG:
                    raise
        domain.undefine()

    def power_state(self, instance_uuid: str) -> str:
        instance_uuid = canonical_uuid(instance_uuid)

        def state_on(conn: libvirt.virConnect) -> str:
            domain = self._lookup(conn, instance_uuid)
            return msg.POWER_NOSTATE if domain is None else self._state(domain)

        return self._call(f"power state of {instance_uuid}", state_on)

    def list_domains(self) -> list[msg.DomainState]:
        def list_on(conn: libvirt.virConnect) -> list[msg.DomainState]:
            found = []
            for domain in conn.listAllDomains(0):
                name = domain.name()
                if not _is_instance_domain_name(name):
                    continue  # e.g. the test driver's own "test" domain, or an operator's VM
                try:
                    found.append(msg.DomainState(uuid=name, power_state=self._state(domain)))
                except libvirt.libvirtError as exc:
                    if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                        raise  # anything but "undefined while we were listing" is a real error
            return sorted(found, key=lambda d: d.uuid)

        return self._call("listing domains", list_on)

    # --- the host -------------------------------------------------------------------------

    def host_info(self) -> HostInfo:
        def info_on(conn: libvirt.virConnect) -> tuple[list[Any], int, str, str, str]:
            return (
                conn.getInfo(),
                conn.getVersion(),
                conn.getHostname(),
                conn.getType(),
                conn.getCapabilities(),
            )

        info, version, hostname, hv_type, capabilities = self._call("host info", info_on)
        # getInfo(): [model, memory MiB, cpus, MHz, NUMA nodes, sockets, cores, threads]
        return HostInfo(
            vcpus=int(info[2]),
            memory_mb=int(info[1]),
            local_gb=self._local_gb(),
            hypervisor_type=hv_type,
            hypervisor_version=int(version),
            hypervisor_hostname=hostname,
            cpu_info=_cpu_info(capabilities, info),
        )

    def _local_gb(self) -> int:
        """Size of the file system that holds the instances directory.

        That is where instance disks go, so it is the disk capacity that matters on every URI;
        the test driver reports no storage of its own anyway. Before the directory exists (first
        run) the nearest existing parent stands in for it, since that is where it will be made.
        """
        path = self.instances_dir.absolute()
        while not path.exists() and path != path.parent:
            path = path.parent
        return shutil.disk_usage(path).total // (1024**3)


def _cpu_info(capabilities_xml: str, info: list[Any]) -> dict[str, Any]:
    cpu = ET.fromstring(capabilities_xml).find("./host/cpu")
    result: dict[str, Any] = {
        "arch": "",
        "model": str(info[0]),
        "vendor": "",
        "mhz": int(info[3]),
        "topology": {"sockets": int(info[5]), "cores": int(info[6]), "threads": int(info[7])},
        "features": [],
    }
    if cpu is None:
        return result
    result["arch"] = cpu.findtext("arch", "")
    result["model"] = cpu.findtext("model", "") or result["model"]
    result["vendor"] = cpu.findtext("vendor", "")
    topology = cpu.find("topology")
    if topology is not None:
        result["topology"] = {
            key: int(topology.get(key, result["topology"].get(key, 0)))
            for key in ("sockets", "cores", "threads")
        }
    result["features"] = sorted(f.get("name", "") for f in cpu.findall("feature"))
    return result
