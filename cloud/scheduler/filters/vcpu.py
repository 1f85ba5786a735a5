from __future__ import annotations

from cloud.scheduler.host_state import HostState, RequestSpec

from . import amount, ratio


class VcpuFilter:
    """Passes a host where vcpus × cpu_allocation_ratio − vcpus_used ≥ the requested vCPUs."""

    def host_passes(self, host: HostState, spec: RequestSpec) -> bool:
        return host.free_vcpus >= spec.vcpus

    def reason(self, host: HostState, spec: RequestSpec) -> str:
        return (f"vCPUs: needs {spec.vcpus}, {amount(host.free_vcpus)} free after the "
                f"{ratio(host.cpu_allocation_ratio)} ratio")
