"""Usage over a period (Nova's os-simple-tenant-usage): for each server that ran in the period, the
hours it ran and what its flavor holds, and per project the totals.

Computed from the instances' own lifetimes (launched_at, terminated_at), deleted ones included, so
there is no usage record to drift. A server that never launched costs nothing; one still running is
counted up to the period's end (never past now).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Q
from django.utils import timezone

from cloud import errors
from cloud.ids import canonical_uuid

from .models import MAX_LIST_LIMIT, Instance


@dataclass
class ServerUsage:
    instance: Instance
    hours: float
    uptime: int  # seconds, from launch to termination or now
    state: str  # the vm_state, or "terminated"

    @property
    def local_gb(self) -> int:
        return self.instance.root_gb + self.instance.ephemeral_gb


@dataclass
class ProjectUsage:
    project_id: str
    start: datetime
    stop: datetime
    servers: list[ServerUsage] = field(default_factory=list)

    @property
    def total_hours(self) -> float:
        return sum(s.hours for s in self.servers)

    def total(self, attribute: str) -> float:
        return sum(getattr(s.instance, attribute) * s.hours for s in self.servers)

    @property
    def total_local_gb(self) -> float:
        return sum(s.local_gb * s.hours for s in self.servers)


def _hours(instance: Instance, start: datetime, stop: datetime) -> float:
    launched, terminated = instance.launched_at, instance.terminated_at
    if launched is None or launched > stop or (terminated is not None and terminated < start):
        return 0.0
    end = min(stop, terminated) if terminated is not None else stop
    return max(0.0, (end - max(launched, start)).total_seconds() / 3600.0)


def usage(
    start: datetime,
    stop: datetime,
    *,
    project_id: str | None = None,
    limit: int | None = None,
    marker: str | None = None,
) -> tuple[list[ProjectUsage], list[ServerUsage]]:
    """Per project (in the order their first server was created), and the page of server usages
    it is made of: servers launched before `stop` and not terminated before `start`, oldest first,
    after the server `marker` names; at most `limit` of them."""
    if not start < stop:
        raise errors.BadRequest(
            "Invalid start time. The start time cannot occur after the end time.")
    now = timezone.now()
    stop = min(stop, now)
    qs = Instance.objects.filter(launched_at__lt=stop).filter(
        Q(terminated_at__isnull=True) | Q(terminated_at__gt=start))
    if project_id is not None:
        qs = qs.filter(project_id=project_id)
    qs = qs.order_by("created_at", "uuid")
    if marker is not None:
        found = qs.filter(uuid=canonical_uuid(marker)).first() if canonical_uuid(marker) else None
        if found is None:
            raise errors.BadRequest(f"Marker {marker} could not be found.")
        qs = qs.filter(Q(created_at__gt=found.created_at)
                       | Q(created_at=found.created_at, uuid__gt=found.uuid))
    limit = MAX_LIST_LIMIT if limit is None else min(limit, MAX_LIST_LIMIT)
    projects: dict[str, ProjectUsage] = {}
    servers: list[ServerUsage] = []
    for instance in qs[:limit]:
        ended = instance.terminated_at
        launched = instance.launched_at or now
        server = ServerUsage(
            instance=instance,
            hours=_hours(instance, start, stop),
            uptime=int(((ended or now) - launched).total_seconds()),
            state="terminated" if ended else instance.vm_state,
        )
        servers.append(server)
        projects.setdefault(instance.project_id,
                            ProjectUsage(instance.project_id, start, stop)).servers.append(server)
    return list(projects.values()), servers
