from __future__ import annotations

from cloud.scheduler.host_state import HostState, RequestSpec


class DiskFilter:
    """Passes a host where local_gb × disk_allocation_ratio − local_gb_used ≥ root_gb + ephemeral_gb
    of the request."""

    def host_passes(self, host: HostState, spec: RequestSpec) -> bool:
        return host.free_disk_gb >= spec.disk_gb
