from __future__ import annotations

from cloud.scheduler.host_state import HostState, RequestSpec

from . import amount, ratio


class RamFilter:
    """Passes a host where memory_mb × ram_allocation_ratio − memory_mb_used ≥ the requested RAM."""

    def host_passes(self, host: HostState, spec: RequestSpec) -> bool:
        return host.free_ram_mb >= spec.memory_mb

    def reason(self, host: HostState, spec: RequestSpec) -> str:
        return (f"RAM: needs {spec.memory_mb} MiB, {amount(host.free_ram_mb)} free after the "
                f"{ratio(host.ram_allocation_ratio)} ratio")
