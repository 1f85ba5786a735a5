"""Where would this fit? The scheduler's own decision, run dry for a server nobody asked for yet.

An admin names a flavor (and optionally an image, a server group and an availability zone); the
answer is what a boot made now would meet: every host, the hosts that pass in the order the
scheduler would try them (with each weigher's part of the weight), and for every other host the
filter that removed it and why, in numbers ("RAM: needs 2048 MiB, 1536 free after the 1.5×
ratio"). Nothing is claimed or written.

The same filters, weighers and host states as a real decision, so the answer cannot drift from
the scheduler's; `explain` is the pure part (plain dataclasses in, plain dataclasses out) and
`check_placement` resolves the request the way a boot does (the same 400s for a flavor, image,
group or zone a boot would refuse). The host states are a snapshot: by the time a boot is made,
another may have taken the room, and the claim (compute/claims.py) re-checks it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone

from cloud import errors
from cloud.compute import availability_zones, server_groups
from cloud.compute.models import Flavor, ServerGroup
from cloud.compute.servers import find_flavor, image_for_boot
from cloud.identity.context import RequestContext
from cloud.images.models import Image

from .filters import HostFilter, run_filters
from .host_state import HostState, RequestSpec, load_host_states
from .loader import load_filters, load_weighers
from .weighers import HostWeigher, weigh_hosts


# Not frozen: a frozen dataclass sets each field through object.__setattr__, which made building
# the answers the dry run's largest cost at 10,000 hosts.
@dataclass(slots=True)
class HostAnswer:
    """One host in the answer: passed (with its rank and weight) or removed (by which filter,
    why)."""

    host: str
    node: str
    availability_zone: str
    free_vcpus: float
    free_ram_mb: float
    free_disk_gb: float
    removed_by: str | None = None
    reason: str = ""
    # 1 for the host a boot would try first; None for a removed host
    rank: int | None = None
    weight: float | None = None
    weights: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.removed_by is None


@dataclass(frozen=True)
class Answer:
    considered: int
    # The hosts that pass, best first, then the removed ones in the order the filters ran.
    hosts: list[HostAnswer]
    # Each filter that ran and how many hosts it removed; filters after the one that removed the
    # last host do not run (as in a real decision), so they are not listed.
    filters: list[tuple[str, int]]

    @property
    def passed(self) -> list[HostAnswer]:
        return [h for h in self.hosts if h.passed]

    @property
    def fits(self) -> bool:
        return bool(self.passed)


def _answer(host: HostState, *, removed_by: str | None = None, reason: str = "",
            rank: int | None = None, weight: float | None = None,
            weights: dict[str, float] | None = None) -> HostAnswer:
    return HostAnswer(
        host=host.host, node=host.node, availability_zone=host.availability_zone,
        free_vcpus=host.free_vcpus, free_ram_mb=host.free_ram_mb, free_disk_gb=host.free_disk_gb,
        removed_by=removed_by, reason=reason, rank=rank, weight=weight, weights=weights or {},
    )


def explain(spec: RequestSpec, hosts: list[HostState], filters: list[HostFilter],
            weighers: list[HostWeigher]) -> Answer:
    """What the scheduler would decide for `spec` over `hosts`, and why, host by host."""
    result = run_filters(filters, hosts, spec)
    answers = [
        _answer(w.host, rank=rank, weight=w.total, weights=w.parts)
        for rank, w in enumerate(weigh_hosts(weighers, result.passed, spec), start=1)
    ]
    for removal in result.removals:
        name = removal.name
        answers.extend(_answer(h, removed_by=name, reason=why)
                       for h, (_, why) in zip(removal.hosts, removal.reasons(spec), strict=True))
    return Answer(considered=result.considered, hosts=answers,
                  filters=[(r.name, len(r.hosts)) for r in result.removals])


@dataclass(frozen=True)
class PlacementCheck:
    """The request as resolved, and the answer."""

    flavor: Flavor
    image: Image | None
    group: ServerGroup | None
    # The hosts of the group's placed members, one entry per member
    group_hosts: tuple[str, ...]
    availability_zone: str | None
    checked_at: datetime
    answer: Answer


def check_placement(ctx: RequestContext, *, flavor_ref: str, image_ref: str | None = None,
                    group_id: str | None = None,
                    availability_zone: str | None = None) -> PlacementCheck:
    """Where a server of this flavor (image, group, zone) would go if booted now; 400 for what a
    boot would refuse: a missing or disabled flavor, an image that is missing, not active or too
    big for the flavor, a group the caller cannot use, a zone with no enabled host."""
    flavor = find_flavor(flavor_ref, ctx)
    if flavor is None or flavor.disabled:
        raise errors.BadRequest(f"Flavor {flavor_ref} could not be found.")
    image = image_for_boot(ctx, image_ref, flavor) if image_ref else None
    group = server_groups.group_from_hints(ctx, {"group": group_id}) if group_id else None
    zone = availability_zones.validate_requested_zone(ctx, availability_zone)
    placement = server_groups.group_placement(group) if group is not None else None
    spec = RequestSpec(
        instance_uuid="",
        vcpus=flavor.vcpus,
        memory_mb=flavor.memory_mb,
        root_gb=flavor.root_gb,
        ephemeral_gb=flavor.ephemeral_gb,
        availability_zone=zone,
        scheduler_hints={"group": str(group.uuid)} if group is not None else {},
        image_ref=str(image.id) if image is not None else "",
        image_properties=dict(image.properties or {}) if image is not None else None,
    ).with_group(placement)
    checked_at = timezone.now()
    answer = explain(spec, load_host_states(checked_at), load_filters(), load_weighers())
    return PlacementCheck(
        flavor=flavor, image=image, group=group,
        group_hosts=placement.hosts if placement is not None else (),
        availability_zone=zone, checked_at=checked_at, answer=answer,
    )
