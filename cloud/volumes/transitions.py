"""The one way a volume's or snapshot's status changes: a conditional UPDATE that changes the row
only if it is still in a status statuses.py allows to be left for the new one, so two requests
racing on one volume cannot both win (the loser gets a 409 from its caller)."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from .models import Volume, VolumeSnapshot
from .statuses import SNAPSHOT_MOVES, VOLUME_MOVES, VOLUME_STATUSES


def move(volume_id: Any, new: str, *, only_from: frozenset[str] | None = None,
         **changes: Any) -> bool:
    """Move the volume to `new` if its status allows it (and, narrower, is in `only_from`);
    True if it moved. `changes` are other columns written in the same UPDATE."""
    allowed = VOLUME_MOVES[new] if only_from is None else VOLUME_MOVES[new] & only_from
    moved = Volume.objects.filter(pk=volume_id, status__in=allowed).update(
        status=new, updated_at=timezone.now(), **changes)
    return moved == 1


def move_snapshot(snapshot_id: Any, new: str, **changes: Any) -> bool:
    moved = VolumeSnapshot.objects.filter(pk=snapshot_id, status__in=SNAPSHOT_MOVES[new]).update(
        status=new, updated_at=timezone.now(), **changes)
    return moved == 1


def force(volume_id: Any, new: str, **changes: Any) -> bool:
    """An admin's os-reset_status: any status Cinder knows, whatever the current one."""
    if new not in VOLUME_STATUSES:
        raise ValueError(new)
    return Volume.objects.filter(pk=volume_id).update(
        status=new, updated_at=timezone.now(), **changes) == 1
