"""The agent's data plane: what makes a port carry packets on this host (bridges, tunnels, DHCP,
security rules, routers). One driver interface (base.NetworkDriver) with a driver per kind of
data plane, chosen by --network-driver, like the hypervisor drivers in compute_agent.drivers."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .base import NetworkDriver, NetworkError, Nic
from .metadata_proxy import MetadataProxy

DRIVERS = ("user", "linuxbridge")

__all__ = ["DRIVERS", "MetadataProxy", "NetworkDriver", "NetworkError", "Nic", "create_driver"]


def create_driver(
    kind: str,
    *,
    state_dir: Path,
    netns: str = "",
    tunnel_ip: str = "",
    physical_interface_mappings: Sequence[str] = (),
    allow_host_netns: bool = False,
    metadata: MetadataProxy | None = None,
) -> NetworkDriver:
    """The network driver `kind` names (--network-driver); NetworkError if it cannot run here.
    `metadata` serves the metadata service in the DHCP namespaces (linuxbridge only: the user-mode
    NIC's guests have no DHCP server of ours to reach it through)."""
    if kind == "user":
        from .usermode import UserModeDriver

        return UserModeDriver()
    if kind == "linuxbridge":
        from .linuxbridge import LinuxBridgeDriver, parse_mappings

        driver = LinuxBridgeDriver(
            state_dir=state_dir, netns=netns, tunnel_ip=tunnel_ip,
            physical_interfaces=parse_mappings(physical_interface_mappings),
            allow_host_netns=allow_host_netns, metadata=metadata,
        )
        driver.start()
        return driver
    raise NetworkError(f"no network driver {kind!r} (one of {', '.join(DRIVERS)})")
