from __future__ import annotations

from django.conf import settings

from cloud.compute.hosts import heartbeat_fresh
from cloud.scheduler.host_state import HostState, RequestSpec

from . import amount


class ComputeAliveFilter:
    """Passes a host whose compute service is not forced down and sent a heartbeat no more than
    KUMO_SERVICE_DOWN_TIME seconds before the host state was read.

    Transient: a host it removes may pass again in seconds (its heartbeats were only delayed, by a
    broker outage for instance), so when nothing else stands in the way the scheduler waits for it
    instead of failing the build at once (scheduler/manager.py)."""

    transient = True

    def host_passes(self, host: HostState, spec: RequestSpec) -> bool:
        if host.read_at is None:
            return False
        return heartbeat_fresh(host.last_seen_up, host.forced_down, host.read_at)

    def reason(self, host: HostState, spec: RequestSpec) -> str:
        if host.forced_down:
            return "Service: forced down"
        if host.last_seen_up is None or host.read_at is None:
            return "Service: no heartbeat yet"
        age = (host.read_at - host.last_seen_up).total_seconds()
        return (f"Service: last heartbeat {amount(round(age))} s ago, down after "
                f"{settings.KUMO_SERVICE_DOWN_TIME} s")
