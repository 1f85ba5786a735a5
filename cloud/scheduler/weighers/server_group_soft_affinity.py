from __future__ import annotations

from cloud.compute.server_groups import SOFT_AFFINITY
from cloud.scheduler.host_state import HostState, RequestSpec


class ServerGroupSoftAffinityWeigher:
    """For a member of a soft-affinity group, prefers the host holding the most live members of the
    group; scores every host alike for other requests (so it leaves their order to the others)."""

    # Scores are scaled to 0..1 before the multiplier, like every weigher's; a multiplier well above
    # the resource weighers' 1.0 lets the group's wish decide, and free resources only break ties.
    multiplier = 10.0

    def weigh(self, host: HostState, spec: RequestSpec) -> float:
        if spec.group_policy != SOFT_AFFINITY:
            return 0.0
        return float(spec.group_hosts.count(host.host))
