from __future__ import annotations

from cloud.scheduler.host_state import HostState, RequestSpec


class FreeRamWeigher:
    """Prefers the host with the most free RAM (memory × ratio − used), spreading instances out."""

    multiplier = 1.0

    def weigh(self, host: HostState, spec: RequestSpec) -> float:
        return host.free_ram_mb
