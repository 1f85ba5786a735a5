"""A server's metadata: the user's key/value pairs on an instance (GET/POST/PUT/DELETE …/metadata).

Every change reads and writes the row under a lock, so two concurrent merges cannot lose each
other's keys, and the lock, state and limit checks see the row they change.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from cloud import errors
from cloud.compute import quotas
from cloud.identity.context import RequestContext

from .models import Instance
from .operations import REGISTRY
from .transitions import ensure_unlocked, locked_row, refusal


def get_item(instance: Instance, key: str) -> str:
    try:
        return instance.metadata[key]
    except KeyError:
        raise errors.NotFound("Metadata item was not found") from None


def update_metadata(
    ctx: RequestContext, instance: Instance, items: dict[str, str], *, replace: bool = False
) -> dict[str, str]:
    """Merge `items` into the server's metadata, or make them the whole of it; returns the result."""
    with transaction.atomic():
        row = _lock_row(ctx, instance)
        metadata = dict(items) if replace else {**row.metadata, **items}
        quotas.check_metadata_items(row.project_id, len(metadata))
        _save(row, metadata)
    instance.metadata = metadata
    return metadata


def delete_item(ctx: RequestContext, instance: Instance, key: str) -> None:
    with transaction.atomic():
        row = _lock_row(ctx, instance)
        if key not in row.metadata:
            raise errors.NotFound("Metadata item was not found")
        metadata = {k: v for k, v in row.metadata.items() if k != key}
        _save(row, metadata)
    instance.metadata = metadata


def _lock_row(ctx: RequestContext, instance: Instance) -> Instance:
    row = locked_row(instance)
    ensure_unlocked(ctx, row)
    if not REGISTRY["update_metadata"].allows(row.vm_state, row.task_state):
        raise refusal(REGISTRY["update_metadata"], row)
    return row


def _save(row: Instance, metadata: dict[str, str]) -> None:
    Instance.objects.filter(pk=row.pk).update(metadata=metadata, updated_at=timezone.now())
