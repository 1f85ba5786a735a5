"""A network driver that only records what it was asked, for tests of the agent's wiring: which
ports were plugged before a domain started, unplugged after it went, and what happens when the
data plane fails (`fail_on`).

    network = FakeNetworkDriver()
    network.fail_on["plug"] = NetworkError("no bridge")   # the next plugs raise this
    ...
    assert network.plugged == {"port-a": instance_uuid}
"""

from __future__ import annotations

import threading
from collections.abc import Collection

from compute_agent import messages as msg

from .base import NetworkDriver, NetworkError, Nic, bridge_name, tap_name


class FakeNetworkDriver(NetworkDriver):
    name = "fake"

    def __init__(self, *, bridged: bool = True) -> None:
        # bridged: vxlan and flat ports get a bridge NIC (as linuxbridge gives), else user-mode.
        self.bridged = bridged
        self.calls: list[tuple[str, object]] = []  # (method, argument), in order
        self.plugged: dict[str, str] = {}  # port id -> instance, plugged and not unplugged since
        self.routers: dict[str, msg.RouterSpec] = {}
        self.refreshed: list[msg.PortsRefresh] = []
        self.fail_on: dict[str, Exception] = {}  # method name -> what it raises
        self._lock = threading.Lock()

    def _record(self, method: str, argument: object) -> None:
        with self._lock:
            self.calls.append((method, argument))
            failure = self.fail_on.get(method)
        if failure is not None:
            raise failure

    def nic(self, port: msg.NetworkInfo) -> Nic:
        if self.bridged and port.network_type in ("vxlan", "flat"):
            return Nic(kind="bridge", mac_address=port.mac_address,
                       bridge=bridge_name(port.network_id), tap=tap_name(port.port_id),
                       mtu=port.mtu)
        return Nic(kind="user", mac_address=port.mac_address)

    def plug(self, instance_uuid: str, ports: list[msg.NetworkInfo]) -> None:
        self._record("plug", (instance_uuid, [p.port_id for p in ports]))
        with self._lock:
            for port in ports:
                self.plugged[port.port_id] = instance_uuid

    def unplug(self, instance_uuid: str, port_ids: Collection[str] | None = None) -> None:
        self._record("unplug", (instance_uuid, None if port_ids is None else sorted(port_ids)))
        with self._lock:
            for port_id in self.port_ids(instance_uuid):
                if port_ids is None or port_id in port_ids:
                    del self.plugged[port_id]

    def port_ids(self, instance_uuid: str) -> list[str]:
        return sorted(p for p, owner in self.plugged.items() if owner == instance_uuid)

    def refresh(self, request: msg.PortsRefresh) -> None:
        self._record("refresh", request)
        with self._lock:
            self.refreshed.append(request)
            for port_id in request.removed:
                self.plugged.pop(port_id, None)

    def sync_router(self, spec: msg.RouterSpec) -> None:
        self._record("sync_router", spec.router_id)
        with self._lock:
            self.routers[spec.router_id] = spec

    def remove_router(self, router_id: str, revision: int = msg.REMOVED_REVISION) -> None:
        self._record("remove_router", router_id)
        with self._lock:
            self.routers.pop(router_id, None)

    def cleanup(self) -> None:
        self._record("cleanup", None)
        with self._lock:
            self.plugged.clear()
            self.routers.clear()


__all__ = ["FakeNetworkDriver", "NetworkError"]
