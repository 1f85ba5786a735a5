from __future__ import annotations

from cloud.compute.server_groups import AFFINITY, Placement
from cloud.scheduler.host_state import HostState, RequestSpec


class ServerGroupAffinityFilter:
    """For a member of an affinity group: passes a host that already holds another live member of
    the group, or any host while no other member has been placed. Other requests pass."""

    def host_passes(self, host: HostState, spec: RequestSpec) -> bool:
        if spec.group_policy != AFFINITY:
            return True
        group = Placement(spec.group_policy, spec.group_rules, spec.group_hosts)
        return group.hard_rule_allows(host.host)

    def reason(self, host: HostState, spec: RequestSpec) -> str:
        where = ", ".join(sorted(set(spec.group_hosts)))
        return f"Affinity: the group's other members are on {where}"
