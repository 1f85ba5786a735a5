"""A hypervisor kept in memory, for tests of what libvirt's test driver cannot do: moving guests
between hosts, and the failures only real hosts have (a destination that dies mid-copy, a cut
link, a copy that never converges).

FakeCloud is the world several FakeDrivers share, one driver per host; a URI names a host as
HostReport.migration_uri does (`fake://<host>`), and a migration moves a domain and its disk from
one host's tables to another's. libvirt's test driver stays the everyday double (it cannot
migrate, and hangs when asked to); this one follows the same Driver contract, with the same
idempotence and the same failure rules, and lets a test break it on purpose:

    cloud = FakeCloud()
    source, dest = cloud.driver("host-a"), cloud.driver("host-b")
    cloud.during_copy = lambda uuid, step: cloud.kill("host-b") if step == 1 else None

Its guests do not run anything: a disk is a string the test may write into (`FakeHost.disks`), and
a copy reports made-up figures in `copy_steps` steps.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from compute_agent import messages as msg
from compute_agent.drivers.base import (
    Driver,
    DriverError,
    HostInfo,
    MigrationCancelled,
    ProgressCallback,
)
from compute_agent.network.base import Nic

SCHEME = "fake://"
MIB = 1024**2
GIB = 1024**3
CANCELLED = "the live migration was cancelled"


@dataclass
class FakeDomain:
    uuid: str
    vcpus: int
    memory_mb: int
    power_state: str = msg.POWER_RUNNING
    incoming: bool = False  # a live copy in progress, not a guest yet
    rescued: bool = False  # booted from a rescue disk, its own attached second
    macs: list[str] = field(default_factory=list)  # its NICs
    crash_dumps: int = 0  # NMIs injected
    volumes: dict[str, str] = field(default_factory=dict)  # volume id -> device (vdb…)


@dataclass
class FakeDisk:
    size_gb: int
    data: str = ""  # what the guest wrote, as far as a test cares


@dataclass
class FakeHost:
    name: str
    domains: dict[str, FakeDomain] = field(default_factory=dict)
    disks: dict[str, FakeDisk] = field(default_factory=dict)  # <uuid>/disk
    prepared: set[str] = field(default_factory=set)  # directory, config drive, console log
    incoming: dict[str, FakeDisk] = field(default_factory=dict)  # a cold move's disk arrived
    images: set[str] = field(default_factory=set)  # the image cache
    up: bool = True  # its hypervisor answers
    linked: bool = True  # other hosts can reach it

    def holds(self, instance_uuid: str) -> bool:
        """Whether anything of the instance is on this host."""
        return any(instance_uuid in table for table in (
            self.domains, self.disks, self.prepared, self.incoming))


@dataclass
class _Job:
    aborted: bool = False
    forced: bool = False
    paused_to_converge: bool = False


class FakeCloud:
    """The hosts of one test, and the faults injected into them."""

    def __init__(self, *, copy_steps: int = 3, step_seconds: float = 0.0) -> None:
        self.lock = threading.RLock()
        self.hosts: dict[str, FakeHost] = {}
        self.copy_steps = copy_steps
        self.step_seconds = step_seconds
        # Called with (instance uuid, step) before each step of a copy, live or cold: the place
        # to kill a host, cut a link or abort, in the middle of it.
        self.during_copy: Callable[[str, int], None] | None = None
        # False: a live copy goes on until it is forced to converge (or aborted, or times out).
        self.converges = True

    def driver(self, name: str) -> FakeDriver:
        with self.lock:
            self.hosts.setdefault(name, FakeHost(name))
        return FakeDriver(self, name)

    @staticmethod
    def uri(name: str) -> str:
        return SCHEME + name

    def host_at(self, uri: str) -> FakeHost:
        """The host a migration URI names, if it can be reached; DriverError as libvirt words it
        otherwise."""
        name = uri.removeprefix(SCHEME) if uri.startswith(SCHEME) else ""
        with self.lock:
            host = self.hosts.get(name)
            if host is None:
                raise DriverError(f"cannot connect to {uri}: no such host")
            if not host.linked:
                raise DriverError(f"cannot reach {uri}: no answer within 20 s")
            if not host.up:
                raise DriverError(f"cannot connect to {uri}: Connection refused")
            return host

    def kill(self, name: str) -> None:
        """The host's hypervisor dies; a live copy arriving there dies with it."""
        with self.lock:
            host = self.hosts[name]
            host.up = False
            for uuid in [u for u, d in host.domains.items() if d.incoming]:
                del host.domains[uuid]

    def revive(self, name: str) -> None:
        with self.lock:
            self.hosts[name].up = True

    def cut(self, name: str) -> None:
        """The host's link goes down: it runs on, but nobody reaches it."""
        with self.lock:
            self.hosts[name].linked = False

    def mend(self, name: str) -> None:
        with self.lock:
            self.hosts[name].linked = True


class FakeDriver(Driver):
    """One host of a FakeCloud, behind the Driver interface."""

    migration_timeout = 900.0

    def __init__(self, cloud: FakeCloud, name: str) -> None:
        self.cloud = cloud
        self.name = name
        self.uri = cloud.uri(name)
        self._jobs: dict[str, _Job] = {}

    @property
    def host(self) -> FakeHost:
        host = self.cloud.hosts[self.name]
        if not host.up:
            raise DriverError(f"cannot connect to {self.uri}: Connection refused")
        return host

    def _domain(self, instance_uuid: str) -> FakeDomain:
        domain = self.host.domains.get(instance_uuid)
        if domain is None or domain.incoming:
            raise DriverError(f"instance {instance_uuid} has no domain on this host")
        return domain

    def spawn(self, request: msg.SpawnRequest) -> str:
        with self.cloud.lock:
            host, uuid = self.host, request.instance_uuid
            domain = host.domains.get(uuid)
            if domain is not None and domain.power_state in (msg.POWER_RUNNING, msg.POWER_PAUSED):
                return domain.power_state
            disk = host.disks.setdefault(uuid, FakeDisk(request.root_gb))
            disk.size_gb = max(disk.size_gb, request.root_gb)  # grown, never shrunk
            if request.image is not None:
                host.images.add(request.image.id)
            host.prepared.add(uuid)
            host.domains[uuid] = FakeDomain(
                uuid, request.vcpus, request.memory_mb,
                volumes={d.volume_id: d.device for d in request.block_devices})
            return msg.POWER_RUNNING

    def destroy(self, instance_uuid: str) -> None:
        with self.cloud.lock:
            host = self.host
            for table in (host.domains, host.disks, host.incoming):
                table.pop(instance_uuid, None)
            host.prepared.discard(instance_uuid)

    def power_state(self, instance_uuid: str) -> str:
        with self.cloud.lock:
            domain = self.host.domains.get(instance_uuid)
            return msg.POWER_NOSTATE if domain is None else domain.power_state

    def list_domains(self) -> list[msg.DomainState]:
        with self.cloud.lock:
            return [msg.DomainState(uuid, d.power_state)
                    for uuid, d in sorted(self.host.domains.items())]

    def host_info(self) -> HostInfo:
        _ = self.host  # a dead host cannot tell
        return HostInfo(vcpus=8, memory_mb=16384, local_gb=100, hypervisor_type="FAKE",
                        hypervisor_version=1, hypervisor_hostname=self.name, cpu_info={})

    def _transition(self, instance_uuid: str, done: str, allowed: tuple[str, ...]) -> str:
        with self.cloud.lock:
            domain = self._domain(instance_uuid)
            if domain.power_state != done:
                if domain.power_state not in allowed:
                    raise DriverError(f"instance {instance_uuid} is {domain.power_state}")
                domain.power_state = done
            return domain.power_state

    def start(self, instance_uuid: str) -> str:
        return self._transition(instance_uuid, msg.POWER_RUNNING, (
            msg.POWER_SHUTDOWN, msg.POWER_CRASHED, msg.POWER_SUSPENDED))

    def stop(self, instance_uuid: str, timeout: float) -> str:
        return self._transition(instance_uuid, msg.POWER_SHUTDOWN, (
            msg.POWER_RUNNING, msg.POWER_PAUSED, msg.POWER_SUSPENDED, msg.POWER_CRASHED))

    def reboot(self, instance_uuid: str, *, hard: bool, timeout: float) -> str:
        with self.cloud.lock:
            self._domain(instance_uuid).power_state = msg.POWER_RUNNING
            return msg.POWER_RUNNING

    def pause(self, instance_uuid: str) -> str:
        return self._transition(instance_uuid, msg.POWER_PAUSED, (msg.POWER_RUNNING,))

    def unpause(self, instance_uuid: str) -> str:
        return self._transition(instance_uuid, msg.POWER_RUNNING, (msg.POWER_PAUSED,))

    def suspend(self, instance_uuid: str) -> str:
        return self._transition(instance_uuid, msg.POWER_SUSPENDED, (
            msg.POWER_RUNNING, msg.POWER_PAUSED))

    def resume(self, instance_uuid: str) -> str:
        return self._transition(instance_uuid, msg.POWER_RUNNING, (msg.POWER_SUSPENDED,))

    def console_output(self, instance_uuid: str, length: int | None) -> str:
        state = self._domain(instance_uuid).power_state
        return f"[fake] {instance_uuid} on {self.name}: {state}"

    def snapshot(self, instance_uuid: str, target: str) -> str:
        with self.cloud.lock:
            self._domain(instance_uuid)
            data = self.host.disks.get(instance_uuid, FakeDisk(0)).data
        with open(os.fspath(target), "w") as copy:
            copy.write(data)
        return "qcow2"

    # --- rescue, crash dumps, NICs ------------------------------------------------------------

    def rescue(self, request: msg.RescueRequest) -> str:
        with self.cloud.lock:
            domain = self._domain(request.instance_uuid)
            domain.rescued, domain.power_state = True, msg.POWER_RUNNING
            return domain.power_state

    def unrescue(self, request: msg.SpawnRequest) -> str:
        with self.cloud.lock:
            domain = self._domain(request.instance_uuid)
            domain.rescued, domain.power_state = False, msg.POWER_RUNNING
            return domain.power_state

    def trigger_crash_dump(self, instance_uuid: str) -> str:
        with self.cloud.lock:
            domain = self._domain(instance_uuid)
            if domain.power_state not in (msg.POWER_RUNNING, msg.POWER_PAUSED):
                raise DriverError(f"instance {instance_uuid} is not running; no crash dump")
            domain.crash_dumps += 1
            return domain.power_state

    def set_interfaces(self, instance_uuid: str, nics: Sequence[str | Nic]) -> str:
        with self.cloud.lock:
            domain = self._domain(instance_uuid)
            domain.macs = [(nic if isinstance(nic, str) else nic.mac_address).lower()
                           for nic in nics]
            return domain.power_state

    def attach_volume(self, instance_uuid: str, device: msg.BlockDevice) -> str:
        with self.cloud.lock:
            domain = self._domain(instance_uuid)
            if device.volume_id not in domain.volumes:
                if device.device in domain.volumes.values():
                    raise DriverError(f"instance {instance_uuid} already has a disk "
                                      f"{device.device}")
                domain.volumes[device.volume_id] = device.device
            return domain.power_state

    def detach_volume(self, instance_uuid: str, volume_id: str) -> str:
        with self.cloud.lock:
            domain = self._domain(instance_uuid)
            domain.volumes.pop(volume_id, None)
            return domain.power_state

    # --- migrations -------------------------------------------------------------------------

    def prepare_migration(self, request: msg.SpawnRequest, *, live: bool) -> None:
        with self.cloud.lock:
            host, uuid = self.host, request.instance_uuid
            if uuid in host.domains:
                return
            if request.image is not None:
                host.images.add(request.image.id)
            host.prepared.add(uuid)
            if live:
                host.disks[uuid] = FakeDisk(request.root_gb)  # made anew for the copy

    def live_migrate(
        self, instance_uuid: str, dest_uri: str, *, on_progress: ProgressCallback
    ) -> str:
        with self.cloud.lock:
            domain = self.host.domains.get(instance_uuid)
            if domain is None or domain.power_state not in (msg.POWER_RUNNING, msg.POWER_PAUSED):
                return self._moved(instance_uuid, dest_uri)
            dest = self.cloud.host_at(dest_uri)
            if instance_uuid not in dest.disks:
                raise DriverError(f"live migration to {dest_uri} failed: no disk was prepared "
                                  f"there for {instance_uuid}")
            dest.domains[instance_uuid] = replace(domain, power_state=msg.POWER_PAUSED,
                                                  incoming=True)
            job = self._jobs[instance_uuid] = _Job()
            was = domain.power_state
        try:
            self._copy(instance_uuid, dest_uri, job, domain, on_progress)
        except BaseException:
            with self.cloud.lock:
                self._jobs.pop(instance_uuid, None)
                arriving = dest.domains.get(instance_uuid)
                if arriving is not None and arriving.incoming:
                    del dest.domains[instance_uuid]
                if job.paused_to_converge and domain.power_state == msg.POWER_PAUSED:
                    domain.power_state = msg.POWER_RUNNING
            raise
        with self.cloud.lock:
            self._jobs.pop(instance_uuid, None)
            source = self.host
            dest.domains[instance_uuid] = replace(domain, power_state=was, incoming=False)
            dest.disks[instance_uuid] = replace(source.disks.pop(instance_uuid, FakeDisk(0)))
            del source.domains[instance_uuid]
            source.prepared.discard(instance_uuid)
            return was

    def _copy(
        self,
        instance_uuid: str,
        dest_uri: str,
        job: _Job,
        domain: FakeDomain,
        on_progress: ProgressCallback,
    ) -> None:
        deadline = time.monotonic() + self.migration_timeout
        total = domain.memory_mb * MIB
        step = 0
        while True:
            if self.cloud.during_copy is not None:
                self.cloud.during_copy(instance_uuid, step)
            if job.aborted:
                raise MigrationCancelled(CANCELLED)
            with self.cloud.lock:
                dest = self.cloud.hosts[dest_uri.removeprefix(SCHEME)]
                if not (dest.up and dest.linked and instance_uuid in dest.domains):
                    raise DriverError(f"live migration to {dest_uri} failed: Lost connection "
                                      "to destination host")
            done = min(total, total * (step + 1) // self.cloud.copy_steps)
            on_progress({"memory_total": total, "memory_processed": done,
                         "memory_remaining": total - done, "disk_total": 0,
                         "disk_processed": 0, "disk_remaining": 0})
            step += 1
            if step >= self.cloud.copy_steps and (self.cloud.converges or job.forced):
                return
            if time.monotonic() > deadline:
                raise DriverError(f"the live migration did not complete within "
                                  f"{self.migration_timeout:.0f} s and was cancelled")
            time.sleep(self.cloud.step_seconds)

    def _moved(self, instance_uuid: str, dest_uri: str) -> str:
        """A guest not active here: success if it runs on the destination (a repeated request),
        after removing what is left of it here."""
        state = self.cloud.host_at(dest_uri).domains.get(instance_uuid)
        if state is None or state.incoming or state.power_state not in (
            msg.POWER_RUNNING, msg.POWER_PAUSED
        ):
            raise DriverError(f"instance {instance_uuid} runs neither here nor on {dest_uri}")
        self.destroy(instance_uuid)
        return state.power_state

    def abort_migration(self, instance_uuid: str) -> bool:
        with self.cloud.lock:
            job = self._jobs.get(instance_uuid)
            if job is None:
                return False
            job.aborted = True
            return True

    def force_complete_migration(self, instance_uuid: str) -> bool:
        with self.cloud.lock:
            job = self._jobs.get(instance_uuid)
            if job is None:
                return False
            job.forced = True
            domain = self.host.domains[instance_uuid]
            if domain.power_state == msg.POWER_RUNNING:
                domain.power_state = msg.POWER_PAUSED
                job.paused_to_converge = True
            return True

    def migrate_disk(self, instance_uuid: str, dest_uri: str, *, stop_timeout: float) -> str:
        with self.cloud.lock:
            self._domain(instance_uuid)
            dest = self.cloud.host_at(dest_uri)
            if instance_uuid in dest.domains:
                return self.power_state(instance_uuid)
            state = self.stop(instance_uuid, stop_timeout)
            disk = replace(self.host.disks[instance_uuid])
        if self.cloud.during_copy is not None:
            self.cloud.during_copy(instance_uuid, 0)
        with self.cloud.lock:
            if not (dest.up and dest.linked):
                raise DriverError(f"sending the disk to {dest_uri} failed: Lost connection")
            dest.incoming[instance_uuid] = disk
        return state

    def finish_migration(self, request: msg.SpawnRequest) -> str:
        with self.cloud.lock:
            host, uuid = self.host, request.instance_uuid
            domain = host.domains.get(uuid)
            if domain is not None and domain.power_state in (msg.POWER_RUNNING, msg.POWER_PAUSED):
                return domain.power_state
            if uuid in host.incoming:
                host.disks[uuid] = host.incoming.pop(uuid)
            elif uuid not in host.disks:
                raise DriverError(f"the disk of instance {uuid} never arrived on this host")
            return self.spawn(request)
