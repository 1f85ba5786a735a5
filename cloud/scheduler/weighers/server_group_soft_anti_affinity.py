from __future__ import annotations

from cloud.compute.server_groups import SOFT_ANTI_AFFINITY
from cloud.scheduler.host_state import HostState, RequestSpec


class ServerGroupSoftAntiAffinityWeigher:
    """For a member of a soft-anti-affinity group, prefers the host holding the fewest live members
    of the group; scores every host alike for other requests."""

    # As for soft affinity: well above the resource weighers, so spreading the group comes first
    # and free resources only break ties between hosts holding as many members.
    multiplier = 10.0

    def weigh(self, host: HostState, spec: RequestSpec) -> float:
        if spec.group_policy != SOFT_ANTI_AFFINITY:
            return 0.0
        return -float(spec.group_hosts.count(host.host))
