"""Where an admin asks a new server to be built.

Two ways, as in Nova: the old `availability_zone` spelling "zone:host", "zone:host:node" or
"zone::node", which forces the host (the scheduler's filters are skipped, only the claim's capacity
check remains), and from 2.74 the `host` and `hypervisor_hostname` fields, which only narrow the
scheduler's choice (every filter still runs). Both name hosts that must exist (400 otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass

from cloud import errors

from . import availability_zones
from .models import ComputeNode


@dataclass(frozen=True)
class Destination:
    host: str | None = None
    node: str | None = None
    forced: bool = False

    def __bool__(self) -> bool:
        return bool(self.host or self.node)


def split_zone(text: str | None) -> tuple[str | None, str | None, str | None]:
    """(zone, host, node) from Nova's availability_zone spelling; 400 for more than two colons."""
    if not text or ":" not in text:
        return text or None, None, None
    parts = text.split(":")
    if len(parts) > 3:
        raise errors.BadRequest("Invalid input received: Unable to parse availability_zone")
    zone, host = parts[0], parts[1]
    node = parts[2] if len(parts) == 3 else ""
    return zone or None, host or None, node or None


def check_destination(host: str | None, node: str | None) -> None:
    """400 unless the named host (and node, on that host) exists, as Nova checks them."""
    nodes = ComputeNode.objects.all()
    if host and node:
        found = nodes.filter(host=host, hypervisor_hostname=node).exists()
        missing = f"{host}:{node}"
    elif host:
        found, missing = nodes.filter(host=host).exists(), host
    elif node:
        found, missing = nodes.filter(hypervisor_hostname=node).exists(), node
    else:
        return
    if not found:
        raise errors.BadRequest(f"Compute host {missing} could not be found.")


def zone_with_forced_host(zone: str | None, host: str | None) -> str | None:
    """The zone a server forced onto `host` is pinned to: the requested one when the host is in it,
    otherwise none (Nova drops a zone the forced host is not in rather than fail the boot)."""
    if zone is None or host is None:
        return zone
    host_zone = availability_zones.zone_of(host, availability_zones.host_zones([host]))
    return zone if zone == host_zone else None


def node_host(node: str) -> str | None:
    return (ComputeNode.objects.filter(hypervisor_hostname=node)
            .values_list("host", flat=True).first())
