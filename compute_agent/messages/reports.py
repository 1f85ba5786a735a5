"""What a host tells the control plane: its heartbeat with its domains, and instance events."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from compute_agent.messages.base import _NESTED, Message, _flat
from compute_agent.messages.names import CONTRACT_VERSION, POWER_NOSTATE

__all__ = [
    "DomainState",
    "DomainsChanged",
    "HostReport",
    "InstanceEvent",
]


@dataclass
class DomainState(Message):
    uuid: str
    power_state: str
    # The VNC port of a running domain, read from its live XML (contract 1.2); -1 when it has
    # none (not running, or a hypervisor without a VNC server, such as libvirt's test driver).
    vnc_port: int = -1
    # The unix socket its VNC server listens on instead of a port, where the host puts them
    # there (contract 1.3; simulated hosts, whose network namespace the console relay cannot
    # reach).
    vnc_socket: str = ""


@dataclass
class HostReport(Message):
    """A compute agent's heartbeat: who it is, what the hypervisor has, which domains exist."""

    host: str
    hypervisor_type: str
    hypervisor_version: int
    hypervisor_hostname: str
    host_ip: str
    vcpus: int
    memory_mb: int
    local_gb: int
    cpu_info: dict[str, Any] = field(default_factory=dict)
    domains: list[DomainState] = field(default_factory=list)
    # How another host's libvirt reaches this one for a migration (contract 1.3); "" when this host
    # cannot take migrations (libvirt's test driver).
    migration_uri: str = ""
    # When the host booted (epoch seconds) and its 1/5/15-minute load averages, from /proc
    # (contract 1.5): Nova's hypervisor uptime. 0.0 and []: unknown.
    boot_time: float = 0.0
    load_average: list[float] = field(default_factory=list)
    # The host's data plane (contract 1.6): "linuxbridge" carries tenant networks; "user" (or ""
    # from an older agent) gives guests qemu's user-mode NICs only.
    network_driver: str = ""

    # Every heartbeat lists every domain, hundreds on a busy host: built field by field, without
    # dataclasses.asdict's deep copies (at 250 guests asdict took half of an agent's report time;
    # this is about 5× faster). The same dict as Message's own.
    def to_dict(self) -> dict[str, Any]:
        data = _flat(self)
        data["cpu_info"] = copy.deepcopy(self.cpu_info)
        data["load_average"] = list(self.load_average)
        data["domains"] = [_flat(d) for d in self.domains]
        data["contract_version"] = CONTRACT_VERSION
        return data


@dataclass
class DomainsChanged(Message):
    """The domains an instance task (or a guest stopping by itself) just touched, each as the
    host's HostReport would list it; a domain no longer there is listed with POWER_NOSTATE
    (contract 1.10, TASK_DOMAINS_CHANGED). It says nothing of the domains it leaves out: the
    heartbeat's HostReport still lists every one, and that is what finds drift and orphans. Sent
    instead of a whole HostReport after every task, whose cost grew with the guests a host ran."""

    host: str
    domains: list[DomainState] = field(default_factory=list)
    boot_time: float = 0.0  # as HostReport.boot_time: a guest shut down by a reboot of its host


@dataclass
class InstanceEvent(Message):
    request_id: str
    instance_uuid: str
    host: str
    event: str
    power_state: str = POWER_NOSTATE
    message: str = ""
    details: str = ""
    action: str = ""  # EVENT_ACTION_FAILED: which ACTION_* failed
    output: str = ""  # EVENT_CONSOLE_OUTPUT: the console log's tail
    image_id: str = ""  # EVENT_SNAPSHOT_UPLOADED: the image that received the data
    migration_id: str = ""  # the migration a migration event belongs to (contract 1.3)
    # EVENT_MIGRATION_PROGRESS: memory_total, memory_processed, memory_remaining, disk_total,
    # disk_processed, disk_remaining (bytes), as libvirt's job info gives them.
    progress: dict[str, int] = field(default_factory=dict)
    port_id: str = ""  # EVENT_INTERFACE_*: the port plugged in or out
    volume_id: str = ""  # EVENT_VOLUME_* and their failures: the volume plugged in or out
    # The domains the task that ends with this event touched (contract 1.12), sent with it rather
    # than as a DomainsChanged of its own right after: one message, one conductor task and one
    # transaction per spawn, destroy or action instead of two. None: not read (an agent older
    # than 1.12 sends its DomainsChanged separately, which the conductor still takes). A
    # conductor older than 1.12 ignores the field, and its hosts' changes wait for the heartbeat:
    # upgrade the control plane before the agents.
    domains_changed: DomainsChanged | None = None


_NESTED[("HostReport", "domains")] = DomainState
_NESTED[("DomainsChanged", "domains")] = DomainState
_NESTED[("InstanceEvent", "domains_changed")] = DomainsChanged
