"""The default network driver: every NIC is qemu's user-mode NIC (the guest reaches out through
the host's own stack, nothing reaches in), so there is nothing to plug on the host."""

from __future__ import annotations

from collections.abc import Collection

from compute_agent import messages as msg

from .base import NetworkDriver, NetworkError, Nic


class UserModeDriver(NetworkDriver):
    name = "user"

    def nic(self, port: msg.NetworkInfo) -> Nic:
        return Nic(kind="user", mac_address=port.mac_address)

    def plug(self, instance_uuid: str, ports: list[msg.NetworkInfo]) -> None:
        return None

    def unplug(self, instance_uuid: str, port_ids: Collection[str] | None = None) -> None:
        return None

    def port_ids(self, instance_uuid: str) -> list[str]:
        return []

    def refresh(self, request: msg.PortsRefresh) -> None:
        return None

    def sync_router(self, spec: msg.RouterSpec) -> None:
        # A router has no data plane here: say so rather than pretend it exists.
        raise NetworkError("this host's network driver (user) cannot run routers")

    def remove_router(self, router_id: str, revision: int = msg.REMOVED_REVISION) -> None:
        return None  # nothing was ever made

    def cleanup(self) -> None:
        return None
