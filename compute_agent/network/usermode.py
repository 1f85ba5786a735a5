"""The default network driver: every NIC is qemu's user-mode NIC (the guest reaches out through
the host's own stack, nothing reaches in), so there is nothing to plug on the host."""

from __future__ import annotations

from compute_agent import messages as msg

from .base import NetworkDriver, NetworkError, Nic


class UserModeDriver(NetworkDriver):
    name = "user"

    def nic(self, port: msg.NetworkInfo) -> Nic:
        return Nic(kind="user", mac_address=port.mac_address)

    def plug(self, ports: list[msg.NetworkInfo]) -> None:
        return None

    def unplug(self, ports: list[msg.NetworkInfo]) -> None:
        return None

    def refresh(self, request: msg.PortsRefresh) -> None:
        return None

    def sync_router(self, spec: msg.RouterSpec) -> None:
        # A router has no data plane here: say so rather than pretend it exists.
        raise NetworkError("this host's network driver (user) cannot run routers")

    def remove_router(self, router_id: str) -> None:
        return None  # nothing was ever made

    def cleanup(self) -> None:
        return None
