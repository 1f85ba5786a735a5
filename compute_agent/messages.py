"""The message contract between the control plane (`cloud`) and the compute agents.

Plain dataclasses, serialised to JSON-safe dicts. Both sides import this module and nothing else of
each other. CONTRACT_VERSION's major part changes only when a field is removed or changes meaning;
receivers ignore fields they do not know, so adding a field is a minor change.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Self

CONTRACT_VERSION = "1.0"

# Queues
SCHEDULER_QUEUE = "scheduler"
CONDUCTOR_QUEUE = "conductor"
COMPUTE_QUEUE_PREFIX = "compute."

# Task names (the Celery task name is the routing contract; defined once here)
TASK_SCHEDULE_INSTANCE = "scheduler.schedule_instance"
TASK_SCHEDULER_ALIVE = "scheduler.report_alive"
TASK_HOST_REPORT = "conductor.host_report"
TASK_INSTANCE_EVENT = "conductor.instance_event"
TASK_CONDUCTOR_ALIVE = "conductor.report_alive"
TASK_BUILD_TIMEOUTS = "conductor.check_build_timeouts"
TASK_SPAWN = "compute.spawn"
TASK_DESTROY = "compute.destroy"


def compute_queue(host: str) -> str:
    return f"{COMPUTE_QUEUE_PREFIX}{host}"


# Power states, named once; the libvirt driver maps libvirt's integers onto these names and the
# API maps them onto Nova's integers.
POWER_NOSTATE = "nostate"
POWER_RUNNING = "running"
POWER_PAUSED = "paused"
POWER_SHUTDOWN = "shutdown"
POWER_CRASHED = "crashed"
POWER_SUSPENDED = "suspended"

# Instance events an agent reports
EVENT_SPAWNED = "spawned"
EVENT_SPAWN_FAILED = "spawn_failed"
EVENT_DESTROYED = "destroyed"

@dataclass
class Message:
    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["contract_version"] = CONTRACT_VERSION
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        version = str(data.get("contract_version", CONTRACT_VERSION))
        if version.split(".")[0] != CONTRACT_VERSION.split(".")[0]:
            raise ValueError(f"{cls.__name__}: contract {version} is not {CONTRACT_VERSION}")
        kwargs = {}
        for f in dataclasses.fields(cls):
            if f.name not in data:
                continue
            value = data[f.name]
            nested = _NESTED.get((cls.__name__, f.name))
            if nested is not None and value is not None:
                value = (
                    [nested.from_dict(v) for v in value]
                    if isinstance(value, list)
                    else nested.from_dict(value)
                )
            kwargs[f.name] = value
        return cls(**kwargs)


@dataclass
class ImageRef(Message):
    id: str
    checksum: str = ""
    disk_format: str = "qcow2"
    size: int = 0
    url: str = ""  # the image API's download URL
    token: str = ""  # a scoped token for the download; never logged


@dataclass
class NetworkInfo(Message):
    network_id: str
    network_name: str
    port_id: str
    mac_address: str
    ip_address: str = ""


@dataclass
class SpawnRequest(Message):
    request_id: str
    instance_uuid: str
    name: str
    hostname: str
    vcpus: int
    memory_mb: int
    root_gb: int
    image: ImageRef | None = None
    networks: list[NetworkInfo] = field(default_factory=list)
    user_data: str = ""
    key_data: str = ""
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass
class DestroyRequest(Message):
    request_id: str
    instance_uuid: str


@dataclass
class DomainState(Message):
    uuid: str
    power_state: str


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


@dataclass
class InstanceEvent(Message):
    request_id: str
    instance_uuid: str
    host: str
    event: str
    power_state: str = POWER_NOSTATE
    message: str = ""
    details: str = ""


_NESTED: dict[tuple[str, str], type[Message]] = {
    ("SpawnRequest", "image"): ImageRef,
    ("SpawnRequest", "networks"): NetworkInfo,
    ("HostReport", "domains"): DomainState,
}
