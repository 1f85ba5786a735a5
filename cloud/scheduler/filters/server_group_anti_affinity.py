from __future__ import annotations

from cloud.compute.server_groups import ANTI_AFFINITY, Placement
from cloud.scheduler.host_state import HostState, RequestSpec


class ServerGroupAntiAffinityFilter:
    """For a member of an anti-affinity group: passes a host holding fewer live members of the
    group than the group's rule max_server_per_host (1 when the group has no such rule). Other
    requests pass."""

    def host_passes(self, host: HostState, spec: RequestSpec) -> bool:
        if spec.group_policy != ANTI_AFFINITY:
            return True
        group = Placement(spec.group_policy, spec.group_rules, spec.group_hosts)
        return group.hard_rule_allows(host.host)

    def reason(self, host: HostState, spec: RequestSpec) -> str:
        group = Placement(spec.group_policy or ANTI_AFFINITY, spec.group_rules, spec.group_hosts)
        held = spec.group_hosts.count(host.host)
        members = "member" if held == 1 else "members"
        return (f"Anti-affinity: holds {held} {members} of the group, at most "
                f"{group.per_host_limit} per host")
