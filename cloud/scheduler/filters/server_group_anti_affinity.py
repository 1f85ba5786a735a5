from __future__ import annotations

from cloud.compute.server_groups import ANTI_AFFINITY
from cloud.scheduler.host_state import HostState, RequestSpec


class ServerGroupAntiAffinityFilter:
    """For a member of an anti-affinity group: passes a host holding fewer live members of the
    group than the group's rule max_server_per_host (1 when the group has no such rule). Other
    requests pass."""

    def host_passes(self, host: HostState, spec: RequestSpec) -> bool:
        if spec.group_policy != ANTI_AFFINITY:
            return True
        limit = spec.group_rules.get("max_server_per_host") or 1
        return spec.group_hosts.count(host.host) < int(limit)
