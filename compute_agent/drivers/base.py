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
from typing import Any, TypedDict

from compute_agent.messages import (
    POWER_CRASHED,
    POWER_NOSTATE,
    POWER_SHUTDOWN,
    DomainState,
    SpawnRequest,
)


class DriverError(Exception):
    """The hypervisor refused or failed an operation. str(error) is readable on its own."""


class HostInfo(TypedDict):
    vcpus: int
    memory_mb: int
    local_gb: int
    hypervisor_type: str
    hypervisor_version: int
    hypervisor_hostname: str
    cpu_info: dict[str, Any]


class Driver(abc.ABC):
    @abc.abstractmethod
    def spawn(self, request: SpawnRequest) -> str:
        """Define and start the instance's domain; return its power state name.

        Idempotent: a domain that already runs is left alone and its state returned. On failure
        the driver may leave a half-made domain behind; the caller cleans up with destroy().
        """

    @abc.abstractmethod
    def destroy(self, instance_uuid: str) -> None:
        """Stop the domain if it runs and remove its definition. A missing domain is success."""

    @abc.abstractmethod
    def power_state(self, instance_uuid: str) -> str:
        """The domain's power state name; POWER_NOSTATE when there is no such domain."""

    @abc.abstractmethod
    def list_domains(self) -> list[DomainState]:
        """Every domain this host holds for an instance (domains not named by a uuid are not
        ours and are left out), whatever its power state."""

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

    # Rebuild and resize are compositions of the operations above, the same for every driver.

    def rebuild(self, request: SpawnRequest) -> str:
        """Re-create the instance from `request` (a new image): domain and root disk are made
        anew, so nothing of the old guest survives. The result runs, whatever it was before."""
        self.destroy(request.instance_uuid)
        return self.spawn(request)

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

    @property
    def scratch_dir(self) -> str:
        """Where the manager may put large temporary files (snapshot copies)."""
        return tempfile.gettempdir()

    def sweep_image_cache(self) -> list[str]:
        """Remove cached images nothing here needs any more; return their names."""
        return []

    def close(self) -> None:
        """Release hypervisor connections; the driver may reconnect if used again."""
