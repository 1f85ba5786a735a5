from __future__ import annotations

from cloud.compute.server_groups import AFFINITY
from cloud.scheduler.host_state import HostState, RequestSpec


class ServerGroupAffinityFilter:
    """For a member of an affinity group: passes a host that already holds another live member of
    the group, or any host while no other member has been placed. Other requests pass."""

    def host_passes(self, host: HostState, spec: RequestSpec) -> bool:
        if spec.group_policy != AFFINITY or not spec.group_hosts:
            return True
        return host.host in spec.group_hosts
