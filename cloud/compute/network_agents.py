"""Neutron's agents as Kumo has them: every compute host's agent also carries that host's data
plane, so each compute service stands for three Neutron agents (Linux bridge, DHCP and L3), alive
exactly when the compute service is (cloud/compute/hosts.py's one liveness rule).

Here rather than in cloud.network because it reads compute's services; the network API lists it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime

from django.utils import timezone

from cloud import errors
from cloud.validation import parse_bool

from .hosts import list_services, service_is_up
from .models import COMPUTE_BINARY, Service

_AGENT_NAMESPACE = uuid.UUID("8b0f3f0e-4d0c-4f57-a3a1-7f6a4f0d9b52")

# (agent_type, binary, topic, availability zone or None)
KINDS = [
    ("Linux bridge agent", "neutron-linuxbridge-agent", "N/A", None),
    ("DHCP agent", "neutron-dhcp-agent", "dhcp_agent", "nova"),
    ("L3 agent", "neutron-l3-agent", "l3_agent", "nova"),
]


def _stamp(dt: datetime | None) -> str | None:
    return dt.strftime("%Y-%m-%d %H:%M:%S") if dt else None


def _agent(service: Service, kind: tuple, now: datetime) -> dict:
    agent_type, binary, topic, zone = kind
    return {
        "id": str(uuid.uuid5(_AGENT_NAMESPACE, f"{service.host}/{binary}")),
        "agent_type": agent_type,
        "binary": binary,
        "topic": topic,
        "host": service.host,
        "admin_state_up": True,
        "alive": service_is_up(service, now),
        "availability_zone": zone,
        "configurations": {},
        "description": None,
        "resources_synced": None,
        "created_at": _stamp(service.created_at),
        "started_at": _stamp(service.created_at),
        "heartbeat_timestamp": _stamp(service.last_seen_up),
        "ha_state": None,
    }


def list_agents(filters: Mapping[str, Sequence[str]]) -> list[dict]:
    now = timezone.now()
    agents = [
        _agent(service, kind, now)
        for service in list_services(binary=COMPUTE_BINARY).order_by("host")
        for kind in KINDS
    ]
    for key in ("id", "agent_type", "binary", "host", "topic", "availability_zone"):
        if filters.get(key):
            agents = [a for a in agents if a[key] in filters[key]]
    for key in ("alive", "admin_state_up"):
        if filters.get(key):
            wanted = {parse_bool(v, f"'{v}' cannot be converted to boolean") for v in filters[key]}
            agents = [a for a in agents if a[key] in wanted]
    return agents


def get_agent(agent_id: str) -> dict:
    for agent in list_agents({"id": [agent_id]}):
        return agent
    raise errors.NotFound(f"Agent {agent_id} could not be found", neutron_type="AgentNotFound")
