"""The network driver interface, and the names every driver gives the devices it makes.

A driver is told the whole wanted state of what a message names (a port, a router) and makes the
host match it, so a repeated or reordered message is harmless. Ports come as
`messages.NetworkInfo`; `network_type == "user"` means the port has no data plane (qemu's
user-mode NIC) and every driver leaves it alone.
"""

from __future__ import annotations

import abc
from collections.abc import Collection
from dataclasses import dataclass

from compute_agent import messages as msg

# Linux interface names are at most 15 characters: a 4-character prefix and 11 of the id, as
# Neutron does, so the devices of one port or network are found from the id alone.
_ID_CHARS = 11


def bridge_name(network_id: str) -> str:
    return "brq" + network_id[:_ID_CHARS]


def tap_name(port_id: str) -> str:
    return "tap" + port_id[:_ID_CHARS]


def vxlan_name(segmentation_id: int) -> str:
    return f"vxlan-{segmentation_id}"


@dataclass(frozen=True)
class Nic:
    """How the domain XML attaches one port: a user-mode NIC, or a tap on a bridge."""

    kind: str  # "user" or "bridge"
    mac_address: str
    bridge: str = ""
    tap: str = ""
    mtu: int | None = None


class NetworkError(RuntimeError):
    """The data plane could not be set up as asked; the message says what failed."""


class NetworkDriver(abc.ABC):
    name = "abstract"

    @abc.abstractmethod
    def nic(self, port: msg.NetworkInfo) -> Nic:
        """How the guest's NIC for `port` is attached in the domain XML."""

    @abc.abstractmethod
    def plug(self, instance_uuid: str, ports: list[msg.NetworkInfo]) -> None:
        """Make everything `ports` (NICs of the instance) need exist on this host before a
        domain using them starts (or arrives by migration): bridge, tunnel, DHCP entry,
        security rules. Plugging a port again updates it."""

    @abc.abstractmethod
    def unplug(self, instance_uuid: str, port_ids: Collection[str] | None = None) -> None:
        """Remove what only these ports of the instance needed (None: all its ports); a
        network's bridge, tunnel and DHCP server go with the last local port on it. Ports never
        plugged are no error."""

    @abc.abstractmethod
    def port_ids(self, instance_uuid: str) -> list[str]:
        """The ports of the instance plugged here."""

    @abc.abstractmethod
    def refresh(self, request: msg.PortsRefresh) -> None:
        """Apply new rules and addresses to ports this host carries; drop `removed` ones. Ports
        this host does not carry are ignored."""

    @abc.abstractmethod
    def sync_router(self, spec: msg.RouterSpec) -> None:
        """Create or update the router so that it matches `spec`."""

    @abc.abstractmethod
    def remove_router(self, router_id: str, revision: int = msg.REMOVED_REVISION) -> None:
        """Remove the router and everything it made; an unknown router is no error. `revision`:
        a router deleted for good (REMOVED_REVISION) never comes back; one moved to another host
        is removed at its current revision, so that it can come back later with a newer one."""

    def name_device(self, current: str, wanted: str, bridge: str) -> bool:
        """Give a container's host-side veth, `current`, the tap name its port implies (`wanted`)
        and keep it in `bridge` (compute_agent.network.veth); True when something changed.
        Drivers without devices of their own have nothing to name."""
        return False

    @abc.abstractmethod
    def cleanup(self) -> None:
        """Remove everything this driver made on the host (the host leaves for good)."""
