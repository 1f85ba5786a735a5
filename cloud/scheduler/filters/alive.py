from __future__ import annotations

from django.conf import settings

from cloud.scheduler.host_state import HostState, RequestSpec


class ComputeAliveFilter:
    """Passes a host whose compute service is not forced down and sent a heartbeat no more than
    KUMO_SERVICE_DOWN_TIME seconds before the host state was read."""

    def __init__(self, down_time: float | None = None):
        self.down_time = settings.KUMO_SERVICE_DOWN_TIME if down_time is None else down_time

    def host_passes(self, host: HostState, spec: RequestSpec) -> bool:
        if host.forced_down or host.last_seen_up is None or host.read_at is None:
            return False
        return (host.read_at - host.last_seen_up).total_seconds() <= self.down_time
