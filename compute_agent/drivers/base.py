"""The interface every hypervisor driver implements, and the one exception it raises.

The manager (compute_agent.manager) talks to hypervisors only through this class, so a driver is
the single place that knows a hypervisor's vocabulary: it speaks instance uuids, contract
dataclasses and the power state names of compute_agent.messages, never native ids or integers.

Every method may be called from several worker threads at once; a driver serialises whatever its
hypervisor connection needs. Failures surface as DriverError with a message fit for a user's eyes.
"""

from __future__ import annotations

import abc
from typing import Any, TypedDict

from compute_agent.messages import DomainState, SpawnRequest


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

    def close(self) -> None:
        """Release hypervisor connections; the driver may reconnect if used again."""
