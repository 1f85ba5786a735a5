from __future__ import annotations

from cloud.scheduler.host_state import HostState, RequestSpec


class ComputeEnabledFilter:
    """Passes a host whose compute service an operator has not disabled."""

    def host_passes(self, host: HostState, spec: RequestSpec) -> bool:
        return not host.disabled

    def reason(self, host: HostState, spec: RequestSpec) -> str:
        return "Service: disabled by an operator"
