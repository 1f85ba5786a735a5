from __future__ import annotations

from cloud.scheduler.host_state import HostState, RequestSpec

from . import amount, ratio


class DiskFilter:
    """Passes a host where local_gb × disk_allocation_ratio − local_gb_used ≥ root_gb + ephemeral_gb
    of the request."""

    def host_passes(self, host: HostState, spec: RequestSpec) -> bool:
        return host.free_disk_gb >= spec.disk_gb

    def reason(self, host: HostState, spec: RequestSpec) -> str:
        return (f"Disk: needs {spec.disk_gb} GB, {amount(host.free_disk_gb)} free after the "
                f"{ratio(host.disk_allocation_ratio)} ratio")
