"""The interface every hypervisor driver implements, and the one exception it raises.

The manager (compute_agent.manager) talks to hypervisors only through this class, so a driver is
the single place that knows a hypervisor's vocabulary: it speaks instance uuids, contract
dataclasses and the power state names of compute_agent.messages, never native ids or integers.

Every method may be called from several worker threads at once; a driver serialises whatever its
hypervisor connection needs. Failures surface as DriverError with a message fit for a user's eyes.
"""

from __future__ import annotations

import abc
import tempfile
from collections.abc import Callable, Sequence
from typing import Any, TypedDict

from compute_agent.messages import (
    POWER_CRASHED,
    POWER_NOSTATE,
    POWER_SHUTDOWN,
    BlockDevice,
    DomainState,
    GuestStats,
    NetworkInfo,
    RescueRequest,
    SpawnRequest,
)
from compute_agent.network.base import Nic


class DriverError(Exception):
    """The hypervisor refused or failed an operation. str(error) is readable on its own."""


class MigrationCancelled(DriverError):
    """The live migration was aborted before it completed; the guest stayed where it was."""


# Called with a live migration's figures (the keys of messages.InstanceEvent.progress, in bytes).
ProgressCallback = Callable[[dict[str, int]], None]


class HostInfo(TypedDict):
    vcpus: int
    memory_mb: int
    local_gb: int
    hypervisor_type: str
    hypervisor_version: int
    hypervisor_hostname: str
    cpu_info: dict[str, Any]


def user_mode_nic(port: NetworkInfo) -> Nic:
    return Nic(kind="user", mac_address=port.mac_address)


class Driver(abc.ABC):
    # How a port becomes a NIC in the domain: the network driver's choice (ComputeManager sets
    # it to its network driver's `nic`); user-mode NICs until then.
    nic_of: Callable[[NetworkInfo], Nic] = staticmethod(user_mode_nic)
    # Naming a container's host-side veth after its port's tap (current, wanted, bridge): the
    # network driver's `name_device`, set with nic_of; nothing to name until then.
    name_nic: Callable[[str, str, str], bool] = staticmethod(lambda _c, _w, _b: False)

    def nics(self, ports: Sequence[NetworkInfo]) -> list[Nic]:
        """The NICs of a domain with `ports` (those without a MAC have none)."""
        return [self.nic_of(port) for port in ports if port.mac_address]

    @abc.abstractmethod
    def spawn(self, request: SpawnRequest) -> str:
        """Define and start the instance's domain; return its power state name.

        Idempotent: a domain that already runs is left alone and its state returned. On failure
        the driver may leave a half-made domain behind; the caller cleans up with destroy().
        """

    @abc.abstractmethod
    def destroy(self, instance_uuid: str) -> None:
        """Stop the domain if it runs and remove its definition and files (a disk received for a
        migration included). A missing domain is success."""

    @abc.abstractmethod
    def power_state(self, instance_uuid: str) -> str:
        """The domain's power state name; POWER_NOSTATE when there is no such domain."""

    @abc.abstractmethod
    def list_domains(self) -> list[DomainState]:
        """Every domain this host holds for an instance (domains not named by a uuid are not
        ours and are left out), whatever its power state."""

    def domain_states(self, instance_uuids: Sequence[str]) -> list[DomainState]:
        """The named domains as list_domains() gives them, POWER_NOSTATE for any not here: what
        the host says after a task touched them. Drivers answer without listing every domain."""
        listed = {d.uuid: d for d in self.list_domains()}
        return [listed.get(u) or DomainState(u, POWER_NOSTATE) for u in instance_uuids]

    @abc.abstractmethod
    def host_info(self) -> HostInfo:
        """Capacity and identity of the hypervisor, for the host report."""

    # --- instance actions -------------------------------------------------------------------
    # Each checks the domain's real state first, so asking for what already holds is success
    # ("already running" for start), and returns the power state name it leaves. A missing domain,
    # or one in a state the action cannot start from, is a DriverError.

    @abc.abstractmethod
    def start(self, instance_uuid: str) -> str:
        """Power on a stopped domain (restoring its saved memory if it was suspended)."""

    @abc.abstractmethod
    def stop(self, instance_uuid: str, timeout: float) -> str:
        """Ask the guest to shut down; after `timeout` seconds (0: at once) pull the plug."""

    @abc.abstractmethod
    def reboot(self, instance_uuid: str, *, hard: bool, timeout: float) -> str:
        """HARD: power-cycle. SOFT: a guest shutdown then a start, HARD if it takes longer than
        `timeout` seconds."""

    @abc.abstractmethod
    def pause(self, instance_uuid: str) -> str:
        """Freeze the guest's CPUs; its memory stays in the host's RAM."""

    @abc.abstractmethod
    def unpause(self, instance_uuid: str) -> str:
        """Let a paused guest's CPUs run again."""

    @abc.abstractmethod
    def suspend(self, instance_uuid: str) -> str:
        """Save the guest's memory to disk and stop its process (power state "suspended")."""

    @abc.abstractmethod
    def resume(self, instance_uuid: str) -> str:
        """Bring a suspended guest back from its saved memory."""

    @abc.abstractmethod
    def console_output(self, instance_uuid: str, length: int | None) -> str:
        """The last `length` lines of the guest's serial console log (None: all that is kept)."""

    @abc.abstractmethod
    def snapshot(self, instance_uuid: str, target: str) -> str:
        """Write a standalone copy of the root disk to `target`; return its disk format. The
        guest is paused (or already stopped) while its disk is read, and left as it was."""

    # --- rescue, crash dumps and NICs (compute_agent.guest_tasks)

    @abc.abstractmethod
    def rescue(self, request: RescueRequest) -> str:
        """Boot the guest from a fresh disk made from the rescue image, its own root disk attached
        second; return its power state. A guest already rescued is left as it is."""

    @abc.abstractmethod
    def unrescue(self, request: SpawnRequest) -> str:
        """Boot the guest from its own disk again, as `request` defines it, and drop the rescue
        disk; return its power state. A guest not rescued that runs is left as it is."""

    @abc.abstractmethod
    def trigger_crash_dump(self, instance_uuid: str) -> str:
        """Inject an NMI into the running (or paused) guest: its kernel dumps itself. A guest
        that is shut off or suspended is a DriverError."""

    @abc.abstractmethod
    def set_interfaces(self, instance_uuid: str, nics: Sequence[str | Nic]) -> str:
        """Give the domain exactly the NICs of `nics` (Nics, or MACs of user-mode NICs): plug in
        the missing ones and unplug the others, live where the hypervisor can (always in its
        definition)."""

    # --- volumes (compute_agent.volume_tasks)

    def attach_volume(self, instance_uuid: str, device: BlockDevice) -> str:
        """Plug the volume in as the guest's disk `device.device`, live where the hypervisor can
        (always in its definition); a volume it has already is left as it is. Its power state."""
        raise DriverError(f"{type(self).__name__} cannot attach volumes")

    def detach_volume(self, instance_uuid: str, volume_id: str) -> str:
        """Take the volume's disk out once the guest released it, and out of the definition; a
        volume it does not have is success. Its power state."""
        raise DriverError(f"{type(self).__name__} cannot detach volumes")

    # --- moving an instance to another host ---------------------------------------------------
    # The steps and who takes them: compute_agent.messages, above TASK_PREPARE_MIGRATION.
    # `dest_uri` is the destination's HostReport.migration_uri: how this host's hypervisor, and
    # the agent itself for a cold move's disk, reach the destination's. Each step checks real
    # state first, so a repeated request finds the work done and succeeds again.

    @abc.abstractmethod
    def prepare_migration(self, request: SpawnRequest, *, live: bool) -> None:
        """Destination: make what the instance needs before it arrives: its image in the cache,
        its directory, config drive and console log and, for a live move, the empty disk the copy
        lands in. When a domain of the instance is here already, nothing is touched."""

    @abc.abstractmethod
    def live_migrate(
        self, instance_uuid: str, dest_uri: str, *, on_progress: ProgressCallback
    ) -> str:
        """Source: move the running (or paused) guest, memory and disk, to the destination while
        it runs; return its power state there. `on_progress` gets the copy's figures about every
        second. Afterwards nothing of it is left here. A guest that already runs there is
        success. On any failure it runs on here as before and does not run there;
        MigrationCancelled when abort_migration stopped it."""

    @abc.abstractmethod
    def abort_migration(self, instance_uuid: str) -> bool:
        """Source: cancel the instance's live migration in progress; False if none is."""

    @abc.abstractmethod
    def force_complete_migration(self, instance_uuid: str) -> bool:
        """Source: make the instance's live migration converge by pausing the guest (it runs
        again on the destination, or here if the move fails); False if none is in progress."""

    @abc.abstractmethod
    def migrate_disk(self, instance_uuid: str, dest_uri: str, *, stop_timeout: float) -> str:
        """Source of a cold move: make sure the destination can take the disk, shut the guest
        down (gracefully for `stop_timeout` seconds, then by pulling the plug) and send its root
        disk there; return its power state here. Its domain and disk stay, for a revert."""

    @abc.abstractmethod
    def finish_migration(self, request: SpawnRequest) -> str:
        """Destination of a cold move: put the disk that arrived in place, grow it to the
        request's root size, define and start the domain; return its power state. A domain that
        is already active is success; no disk is a DriverError (a new one would lose the guest's
        data)."""

    # Rebuild and resize are compositions of the operations above, the same for every driver.

    def rebuild(self, request: SpawnRequest) -> str:
        """Re-create the instance from `request` (a new image): domain and root disk are made
        anew, so nothing of the old guest survives. A guest that was shut down is shut down again
        afterwards, as Nova leaves a rebuilt stopped server stopped; any other one runs."""
        before = self.power_state(request.instance_uuid)
        self.destroy(request.instance_uuid)
        state = self.spawn(request)
        if before == POWER_SHUTDOWN:
            state = self.stop(request.instance_uuid, 0)
        return state

    def resize(self, request: SpawnRequest, *, stop_timeout: float) -> str:
        """Give the instance the sizes in `request` (a resize, or its revert): stop the guest,
        define it again with the new vCPUs and memory, grow (never shrink) its root disk, start
        it. A guest that was stopped before is stopped again afterwards."""
        before = self.power_state(request.instance_uuid)
        if before == POWER_NOSTATE:
            raise DriverError(f"instance {request.instance_uuid} has no domain on this host")
        self.stop(request.instance_uuid, stop_timeout)
        state = self.spawn(request)
        if before in (POWER_SHUTDOWN, POWER_CRASHED):
            state = self.stop(request.instance_uuid, 0)
        return state

    def guest_stats(self) -> list[GuestStats]:
        """The counters of every running instance domain (CPU time, memory, disks, NICs), for
        the statistics report. A driver that cannot read them reports none."""
        return []

    def init_host(self) -> None:
        """Prepare the host once, when the agent starts (directories, what migrations need)."""

    def watch_guests(self, on_stopped: Callable[[list[str]], None]) -> None:
        """Call `on_stopped(instance_uuids)`, from a thread of the driver's own, soon after
        guests stop without being asked to (their qemu died, they crashed or powered themselves
        off), so the host is reported at once rather than at the next heartbeat. A driver whose
        guests cannot stop on their own (or that cannot tell) watches nothing: the heartbeat
        finds them."""

    @property
    def scratch_dir(self) -> str:
        """Where the manager may put large temporary files (snapshot copies)."""
        return tempfile.gettempdir()

    def sweep_image_cache(self) -> list[str]:
        """Remove cached images nothing here needs any more; return their names."""
        return []

    def close(self) -> None:
        """Release hypervisor connections; the driver may reconnect if used again."""
