"""Server groups: a project's servers placed together (affinity) or apart (anti-affinity).

The hard policies are scheduler filters, the soft ones weighers (cloud/scheduler). A member counts
while its instance is not deleted and has a host; `placement_for` reads exactly that, for the
scheduler's request spec and, under the group's row lock, for the re-check inside a claim.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.db.models import QuerySet

from cloud import errors
from cloud.compute import quotas
from cloud.identity.context import RequestContext
from cloud.ids import canonical_uuid

from .models import MAX_LIST_LIMIT, Instance, ServerGroup, ServerGroupMember
from .server_rows import Among

AFFINITY = "affinity"
ANTI_AFFINITY = "anti-affinity"
SOFT_AFFINITY = "soft-affinity"
SOFT_ANTI_AFFINITY = "soft-anti-affinity"
POLICIES = (AFFINITY, ANTI_AFFINITY, SOFT_AFFINITY, SOFT_ANTI_AFFINITY)
HARD_POLICIES = (AFFINITY, ANTI_AFFINITY)


def _visible(ctx: RequestContext) -> QuerySet[ServerGroup]:
    # Admins act on any project's group (as Nova's show/delete allow); others on their own only,
    # and a foreign group answers exactly like a missing one.
    qs = ServerGroup.objects.all()
    if not ctx.is_admin:
        qs = qs.filter(project_id=ctx.project_id)
    return qs


def list_groups(
    ctx: RequestContext,
    *,
    all_projects: bool = False,
    limit: int | None = None,
    offset: int = 0,
) -> list[ServerGroup]:
    """The project's groups, or every project's for an admin who asks; oldest first."""
    qs = ServerGroup.objects.order_by("created_at", "uuid")
    if not (ctx.is_admin and all_projects):
        qs = qs.filter(project_id=ctx.project_id)
    limit = MAX_LIST_LIMIT if limit is None else min(limit, MAX_LIST_LIMIT)
    return list(qs[offset : offset + limit])


def get_group(ctx: RequestContext, group_id: str) -> ServerGroup:
    uuid = canonical_uuid(group_id)
    group = _visible(ctx).filter(pk=uuid).first() if uuid else None
    if group is None:
        raise errors.NotFound(f"Instance group {group_id} could not be found.")
    return group


def create_group(
    ctx: RequestContext, name: str, policy: str, rules: dict | None = None
) -> ServerGroup:
    if policy not in POLICIES:
        raise errors.BadRequest(f"Invalid server group policy: {policy}")
    rules = dict(rules or {})
    if rules and policy != ANTI_AFFINITY:
        raise errors.BadRequest("Only the anti-affinity policy takes rules.")
    with transaction.atomic():
        quotas.reserve(ctx.scope, {"server_groups": 1})
        return ServerGroup.objects.create(
            name=name,
            project_id=ctx.project_id,
            user_id=ctx.user_id,
            policy=policy,
            rules=rules,
        )


def delete_group(ctx: RequestContext, group: ServerGroup) -> None:
    # Members simply leave the group (their rows cascade); their servers are not touched.
    group.delete()


def members_of(groups: list[ServerGroup]) -> dict[str, list[str]]:
    """group uuid → uuids of its live members, in the order they joined; one query per page."""
    result: dict[str, list[str]] = {str(g.uuid): [] for g in groups}
    if not groups:
        return result
    rows = (
        ServerGroupMember.objects.filter(group__in=groups, instance__deleted=False)
        .order_by("id")
        .values_list("group_id", "instance_id")
    )
    for group_id, instance_id in rows:
        result[str(group_id)].append(str(instance_id))
    return result


def groups_of_servers(uuids: list[str]) -> dict[str, list[str]]:
    """server uuid → the uuid of its group in a one-item list (a server is in at most one), for a
    page of servers (2.71's server_groups) in one query."""
    rows = ServerGroupMember.objects.filter(Among("instance_id", uuids)).values_list(
        "instance_id", "group_id")
    return {str(instance_id): [str(group_id)] for instance_id, group_id in rows}


def group_from_hints(ctx: RequestContext, hints: dict) -> ServerGroup | None:
    """The group a boot asks to join through the `group` scheduler hint; 400 if it is not one the
    caller may use (a missing and a foreign group answer the same)."""
    hint = (hints or {}).get("group")
    if hint is None or hint == "":
        return None
    if not isinstance(hint, str):
        raise errors.BadRequest("Invalid input for field/attribute group. It must be a UUID.")
    uuid = canonical_uuid(hint)
    group = _visible(ctx).filter(pk=uuid).first() if uuid else None
    if group is None:
        raise errors.BadRequest(f"Instance group {hint} could not be found.")
    return group


def add_member(group: ServerGroup, instance: Instance) -> None:
    ServerGroupMember.objects.create(group=group, instance=instance)


@dataclass(frozen=True)
class Placement:
    """An instance's group as the scheduler needs it."""

    policy: str
    rules: dict
    # The hosts of the group's OTHER live members, one entry per member (so repeats count).
    hosts: tuple[str, ...]

    def hard_rule_allows(self, host: str) -> bool:
        """Whether the group's hard policy lets one more member land on `host`.

        affinity: any host while no other member is placed, then only their host.
        anti-affinity: a host holding fewer members than the rule max_server_per_host (1 when the
        group has no such rule). Soft policies never forbid a host (weighers prefer instead).
        """
        if self.policy == AFFINITY:
            return not self.hosts or host in self.hosts
        if self.policy == ANTI_AFFINITY:
            return self.hosts.count(host) < self.per_host_limit
        return True

    @property
    def per_host_limit(self) -> int:
        """How many members anti-affinity lets one host hold: the rule max_server_per_host, else 1."""
        return int(self.rules.get("max_server_per_host") or 1)


def placement_for(instance_uuid: str, *, lock: bool = False) -> Placement | None:
    """The instance's group policy and where its other members are, or None outside a group.

    With `lock`, the group row is locked first (inside the caller's transaction), so claims of
    members of one group run one at a time and each sees where the previous one landed."""
    group_id = (
        ServerGroupMember.objects.filter(instance_id=instance_uuid)
        .values_list("group_id", flat=True)
        .first()
    )
    if group_id is None:
        return None
    qs = ServerGroup.objects.filter(pk=group_id)
    if lock:
        qs = qs.select_for_update(no_key=True)
    group = qs.first()
    if group is None:
        return None
    return group_placement(group, excluding=instance_uuid)


def group_placement(group: ServerGroup, *, excluding: str | None = None) -> Placement:
    """The group's policy and the hosts of its live placed members (but `excluding`): what the
    scheduler weighs a new member against."""
    members = Instance.objects.filter(group_member__group_id=group.pk, deleted=False,
                                      host__isnull=False)
    if excluding is not None:
        members = members.exclude(pk=excluding)
    hosts = members.order_by("host").values_list("host", flat=True)
    return Placement(policy=group.policy, rules=dict(group.rules or {}), hosts=tuple(hosts))
