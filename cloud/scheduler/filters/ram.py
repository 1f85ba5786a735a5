from __future__ import annotations

from cloud.scheduler.host_state import HostState, RequestSpec


class RamFilter:
    """Passes a host where memory_mb × ram_allocation_ratio − memory_mb_used ≥ the requested RAM."""

    def host_passes(self, host: HostState, spec: RequestSpec) -> bool:
        return host.free_ram_mb >= spec.memory_mb
