from __future__ import annotations

from cloud.scheduler.host_state import HostState, RequestSpec


class RetryFilter:
    """Passes a host that a failed build of this instance has not already tried."""

    def host_passes(self, host: HostState, spec: RequestSpec) -> bool:
        return host.host not in spec.ignore_hosts

    def reason(self, host: HostState, spec: RequestSpec) -> str:
        return "Retry: a failed build of this server already tried it"
