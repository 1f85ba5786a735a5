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
import time
import uuid
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import libvirt

from compute_agent import messages as msg
from compute_agent import qemu_img
from compute_agent.domain_xml import build_domain_xml, canonical_uuid
from compute_agent.drivers.base import Driver, DriverError, HostInfo
from compute_agent.image_cache import DEFAULT_MAX_IDLE, ImageCache
from compute_agent.instance_disks import prepare
from compute_agent.instance_files import InstanceFiles, contained

LOG = logging.getLogger(__name__)

DEFAULT_INSTANCES_DIR = "/var/lib/kumo/instances"

T = TypeVar("T")

# How often a wait for a guest to power off looks again.
POLL_INTERVAL = 0.25
# console_output reads at most this much of the log's end, whatever `length` asks for.
CONSOLE_TAIL_BYTES = 256 * 1024
# What a snapshot on the test driver (which has no disks) uploads: an empty qcow2 of this size.
TEST_SNAPSHOT_SIZE = 1024 * 1024

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


class NoSuchInstance(DriverError):
    pass


class WrongState(DriverError):
    pass


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
    it dies (libvirtd restarted, remote link lost).

    On the test driver (`domain_type` "test") a domain is only a definition: no disks, no config
    drive, no console log. Any other type boots a real guest from files under `instances_dir`
    (see compute_agent.instance_files), its image fetched through the host's image cache.

    Suspend is libvirt's managed save: the guest's memory goes to a file and its qemu process
    ends, which works the same under TCG and KVM and frees the host's RAM; resume (or start)
    restores it. Pause is libvirt's suspend: the vCPUs stop, the memory stays.
    """

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
        # A managed save (our suspend) leaves the domain shut off with its memory in a file; the
        # reason "saved" outlives a discarded save, so the save image itself is what counts.
        if state == libvirt.VIR_DOMAIN_SHUTOFF and domain.hasManagedSaveImage(0):
            return msg.POWER_SUSPENDED
        return power_state_from_libvirt(state, reason)

    def _domain_xml(self, request: msg.SpawnRequest) -> str:
        if not self.has_disks:
            return build_domain_xml(
                request, domain_type=self.domain_type, vnc_listen=self.vnc_listen
            )
        # Downloads and qemu-img run here, outside the connection lock, so one slow image does
        # not hold up every other operation on the host.
        prepared = prepare(request, self.files, self.image_cache)
        return build_domain_xml(
            request,
            domain_type=self.domain_type,
            vnc_listen=self.vnc_listen,
            disks=prepared.disks,
            serial_log_path=prepared.serial_log_path,
            mac_addresses=[nic.mac_address for nic in request.networks if nic.mac_address],
            video_model="vga",
            machine="pc",
        )

    def spawn(self, request: msg.SpawnRequest) -> str:
        instance_uuid = canonical_uuid(request.instance_uuid)
        if self.has_disks and self.power_state(instance_uuid) in (
            msg.POWER_RUNNING, msg.POWER_PAUSED
        ):
            # Its disks are in use: leave them (and the guest) exactly as they are.
            LOG.info("domain %s is already active, leaving it as it is", instance_uuid)
            return self.power_state(instance_uuid)
        xml = self._domain_xml(request)

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
        try:
            self.files.remove_instance_dir(instance_uuid)
        except OSError as exc:
            raise DriverError(f"cannot remove the files of {instance_uuid}: {exc}") from exc

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
                    found.append(msg.DomainState(
                        uuid=name, power_state=self._state(domain), vnc_port=_vnc_port(domain)
                    ))
                except libvirt.libvirtError as exc:
                    if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                        raise  # anything but "undefined while we were listing" is a real error
            return sorted(found, key=lambda d: d.uuid)

        return self._call("listing domains", list_on)

    # --- instance actions -------------------------------------------------------------------

    def _act(self, what: str, instance_uuid: str, fn: Callable[[libvirt.virDomain], T]) -> T:
        """Run fn(domain) under the connection lock; a missing domain is NoSuchInstance."""
        instance_uuid = canonical_uuid(instance_uuid)

        def on(conn: libvirt.virConnect) -> T:
            domain = self._lookup(conn, instance_uuid)
            if domain is None:
                raise NoSuchInstance(f"instance {instance_uuid} has no domain on this host")
            return fn(domain)

        return self._call(f"{what} of {instance_uuid}", on)

    def _wait_for_power_off(self, instance_uuid: str, timeout: float) -> bool:
        """Poll (without holding the lock between looks) until the domain is inactive."""
        deadline = time.monotonic() + timeout
        while True:
            if not self._act("power-off wait", instance_uuid, lambda d: bool(d.isActive())):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL_INTERVAL)

    def start(self, instance_uuid: str) -> str:
        def start_domain(domain: libvirt.virDomain) -> str:
            if not domain.isActive():
                domain.create()  # restores the saved memory of a suspended guest
            return self._state(domain)

        return self._act("start", instance_uuid, start_domain)

    def stop(self, instance_uuid: str, timeout: float) -> str:
        def begin(domain: libvirt.virDomain) -> bool:
            """Return True when nothing is left to wait for."""
            if not domain.isActive():
                if domain.hasManagedSaveImage(0):
                    domain.managedSaveRemove(0)  # a stopped guest boots afresh, not from memory
                return True
            state, _ = domain.state()
            # A paused guest cannot hear the ACPI request, so waiting would only waste the timeout.
            if timeout <= 0 or state == libvirt.VIR_DOMAIN_PAUSED:
                domain.destroy()
                return True
            domain.shutdown()
            return False

        finished = self._act("stop", instance_uuid, begin)
        if not finished and not self._wait_for_power_off(instance_uuid, timeout):
            LOG.info("%s did not shut down within %s s, destroying it", instance_uuid, timeout)
            self._act("stop", instance_uuid, self._destroy_if_active)
        return self.power_state(instance_uuid)

    @staticmethod
    def _destroy_if_active(domain: libvirt.virDomain) -> None:
        try:
            if domain.isActive():
                domain.destroy()
        except libvirt.libvirtError:
            if domain.isActive():
                raise  # it shut down by itself between the two calls otherwise

    def reboot(self, instance_uuid: str, *, hard: bool, timeout: float) -> str:
        def begin(domain: libvirt.virDomain) -> bool:
            """Return True when the soft way is under way, False when a hard one is needed."""
            state, _ = domain.state()
            if hard or state != libvirt.VIR_DOMAIN_RUNNING:
                return False  # a guest that is not running cannot take part in a soft reboot
            domain.shutdown()
            return True

        soft = self._act("reboot", instance_uuid, begin)
        if soft and not self._wait_for_power_off(instance_uuid, timeout):
            LOG.info("%s did not shut down within %s s, rebooting it hard", instance_uuid, timeout)

        def power_cycle(domain: libvirt.virDomain) -> str:
            self._destroy_if_active(domain)
            if domain.hasManagedSaveImage(0):
                domain.managedSaveRemove(0)
            domain.create()
            return self._state(domain)

        return self._act("reboot", instance_uuid, power_cycle)

    def _transition(
        self,
        what: str,
        instance_uuid: str,
        *,
        done: tuple[str, ...],
        allowed: tuple[str, ...],
        action: Callable[[libvirt.virDomain], object],
    ) -> str:
        def run(domain: libvirt.virDomain) -> str:
            state = self._state(domain)
            if state in done:
                return state
            if state not in allowed:
                raise WrongState(f"cannot {what} instance {instance_uuid}: it is {state}")
            action(domain)
            return self._state(domain)

        return self._act(what, instance_uuid, run)

    def pause(self, instance_uuid: str) -> str:
        return self._transition(
            "pause", instance_uuid, done=(msg.POWER_PAUSED,), allowed=(msg.POWER_RUNNING,),
            action=lambda d: d.suspend(),
        )

    def unpause(self, instance_uuid: str) -> str:
        return self._transition(
            "unpause", instance_uuid, done=(msg.POWER_RUNNING,), allowed=(msg.POWER_PAUSED,),
            action=lambda d: d.resume(),
        )

    def suspend(self, instance_uuid: str) -> str:
        return self._transition(
            "suspend", instance_uuid, done=(msg.POWER_SUSPENDED,),
            allowed=(msg.POWER_RUNNING, msg.POWER_PAUSED), action=lambda d: d.managedSave(0),
        )

    def resume(self, instance_uuid: str) -> str:
        return self._transition(
            "resume", instance_uuid, done=(msg.POWER_RUNNING,), allowed=(msg.POWER_SUSPENDED,),
            action=lambda d: d.create(),
        )

    def console_output(self, instance_uuid: str, length: int | None) -> str:
        instance_uuid = canonical_uuid(instance_uuid)
        state = self.power_state(instance_uuid)
        if state == msg.POWER_NOSTATE:
            raise NoSuchInstance(f"instance {instance_uuid} has no domain on this host")
        if not self.has_disks:
            # Several lines, so that `length` can be seen to cut them as it does a real log.
            log = "".join(f"[kumo test driver] {instance_uuid} line {n}: {state}, no real console\n"
                          for n in range(1, 11))
            return _last_lines(log, length)
        return _tail(self.files.console_log(instance_uuid), length)

    def snapshot(self, instance_uuid: str, target: str) -> str:
        instance_uuid = canonical_uuid(instance_uuid)
        self.files.ensure_dirs()
        target_path = contained(target, self.files.snapshot_dir)
        if not self.has_disks:
            if self.power_state(instance_uuid) == msg.POWER_NOSTATE:
                raise NoSuchInstance(f"instance {instance_uuid} has no domain on this host")
            qemu_img.create(target_path, "qcow2", TEST_SNAPSHOT_SIZE)
            return "qcow2"

        def pause_if_running(domain: libvirt.virDomain) -> bool:
            state, _ = domain.state()
            if state == libvirt.VIR_DOMAIN_RUNNING:
                domain.suspend()  # qemu flushes the disk when it stops the vCPUs
                return True
            return False

        paused_here = self._act("snapshot", instance_uuid, pause_if_running)
        try:
            disk = self.files.disk(instance_uuid)
            if not disk.is_file():
                raise DriverError(f"instance {instance_uuid} has no root disk on this host")
            qemu_img.convert(disk, "qcow2", target_path, "qcow2", force_share=True)
        finally:
            if paused_here:
                self._act("snapshot", instance_uuid, lambda d: d.resume())
        return "qcow2"

    def sweep_image_cache(self, max_idle: float = DEFAULT_MAX_IDLE) -> list[str]:
        if not self.has_disks:
            return []
        return self.image_cache.sweep(self.files.bases_in_use(), max_idle=max_idle)

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


def _vnc_port(domain: libvirt.virDomain) -> int:
    """The port libvirt gave the running domain's VNC display (autoport), -1 without one.

    Only the live XML has it; an inactive domain's definition keeps port -1.
    """
    if not domain.isActive():
        return -1
    graphics = ET.fromstring(domain.XMLDesc(0)).find("./devices/graphics[@type='vnc']")
    try:
        port = int(graphics.get("port", "-1")) if graphics is not None else -1
    except ValueError:
        return -1
    return port if port > 0 else -1


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


def _tail(path: Path, length: int | None) -> str:
    """The last `length` lines of a log (all of it for None), from at most its last
    CONSOLE_TAIL_BYTES; a log not written yet is empty."""
    try:
        with open(path, "rb") as log:
            log.seek(0, os.SEEK_END)
            size = log.tell()
            log.seek(max(0, size - CONSOLE_TAIL_BYTES))
            data = log.read()
    except FileNotFoundError:
        return ""
    return _last_lines(data.decode("utf-8", errors="replace"), length)


def _last_lines(text: str, length: int | None) -> str:
    """The last `length` lines joined by newlines, with no newline after the last (as Nova
    answers: a client that splits on newlines counts exactly `length`)."""
    if length is None:
        return text
    if length <= 0:
        return ""
    return "\n".join(deque(text.splitlines(), maxlen=length))
