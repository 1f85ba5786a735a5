"""What a volume host's answers do to the volumes (contract: compute_agent/messages/volumes.py),
and the deadlines that end every accepted volume request even when its host never answers.

Every status change is a compare-and-swap (cloud/volumes/transitions.py): an event repeated, late,
or about a volume that has moved on since finds nothing to move and changes nothing. An event is
applied only from the host that holds the volume.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from cloud import rpc
from cloud.images.models import Image
from cloud.volumes import hosts, statuses, transitions
from cloud.volumes.models import Volume, VolumeSnapshot
from compute_agent import messages as msg

log = logging.getLogger(__name__)

# Seconds a volume host has to answer before the request is ended for it. A create may download
# an image first; a delete is only re-sent (it is idempotent), never given up.
CREATE_DEADLINE = 900
EXTEND_DEADLINE = 300
UPLOAD_DEADLINE = 1800
SNAPSHOT_DEADLINE = 300
RESEND_AFTER = 120
NO_ANSWER = "The volume host {host} did not answer in time."


def apply_volume_host_report(report: msg.VolumeHostReport) -> None:
    hosts.record_report(report)


def apply_volume_event(event: msg.VolumeEvent) -> None:
    volume = Volume.objects.select_related("host").filter(pk=event.volume_id).first()
    if volume is None:
        return  # gone already: a repeated delete, or an answer about a forgotten volume
    if volume.host is None or volume.host.name != event.host:
        log.warning("volume event %s for %s from %s, which does not hold it: ignored",
                    event.event, event.volume_id, event.host)
        return
    handler = _HANDLERS.get(event.event)
    if handler is None:
        log.warning("unknown volume event %s: ignored", event.event)
        return
    handler(volume, event)


def _created(volume: Volume, event: msg.VolumeEvent) -> None:
    transitions.move(volume.pk, statuses.AVAILABLE,
                     only_from=frozenset({statuses.CREATING, statuses.DOWNLOADING}),
                     connection=event.connection, size=max(volume.size, event.size_gb),
                     status_reason="")


def _extended(volume: Volume, event: msg.VolumeEvent) -> None:
    transitions.move(volume.pk, statuses.AVAILABLE, only_from=frozenset({statuses.EXTENDING}),
                     size=max(volume.size, event.size_gb), status_reason="")


def _deleted(volume: Volume, event: msg.VolumeEvent) -> None:
    with transaction.atomic():
        locked = Volume.objects.select_for_update().filter(
            pk=volume.pk, status=statuses.DELETING).first()
        if locked is None:
            return
        # Its snapshots lived inside its file: they went with it.
        VolumeSnapshot.objects.filter(volume=locked).delete()
        locked.delete()


def _back_from_upload(volume: Volume, reason: str = "") -> None:
    back = statuses.IN_USE if volume.attach_status == statuses.ATTACHED else statuses.AVAILABLE
    transitions.move(volume.pk, back, only_from=frozenset({statuses.UPLOADING}),
                     status_reason=reason)


def _uploaded(volume: Volume, event: msg.VolumeEvent) -> None:
    # The image became active by the upload itself (the image API's own PUT /file).
    _back_from_upload(volume)


def _snapshot_created(volume: Volume, event: msg.VolumeEvent) -> None:
    transitions.move_snapshot(event.snapshot_id, statuses.AVAILABLE, progress="100%",
                              status_reason="")


def _snapshot_deleted(volume: Volume, event: msg.VolumeEvent) -> None:
    VolumeSnapshot.objects.filter(pk=event.snapshot_id, volume=volume,
                                  status=statuses.DELETING).delete()


def _failed(volume: Volume, event: msg.VolumeEvent) -> None:
    reason = event.message or f"The volume host could not {event.action.replace('_', ' ')}."
    action = event.action
    if action == msg.VOLUME_ACTION_CREATE:
        transitions.move(volume.pk, statuses.ERROR, status_reason=reason)
    elif action == msg.VOLUME_ACTION_EXTEND:
        transitions.move(volume.pk, statuses.ERROR_EXTENDING, status_reason=reason)
    elif action == msg.VOLUME_ACTION_DELETE:
        with transaction.atomic():
            if transitions.move(volume.pk, statuses.ERROR_DELETING, status_reason=reason):
                VolumeSnapshot.objects.filter(volume=volume, status=statuses.DELETING).update(
                    status=statuses.ERROR_DELETING, status_reason=reason)
    elif action == msg.VOLUME_ACTION_UPLOAD:
        _back_from_upload(volume, reason)
        if event.image_id:
            # The queued image will never get its data: Glance's "killed" is a deleted image.
            Image.objects.filter(pk=event.image_id, status="queued").delete()
    elif action == msg.VOLUME_ACTION_CREATE_SNAPSHOT:
        transitions.move_snapshot(event.snapshot_id, statuses.ERROR, status_reason=reason)
    elif action == msg.VOLUME_ACTION_DELETE_SNAPSHOT:
        transitions.move_snapshot(event.snapshot_id, statuses.ERROR_DELETING,
                                  status_reason=reason)
    else:
        log.warning("volume action %s failed on %s: %s", action, event.host, reason)


_HANDLERS: dict[str, Any] = {
    msg.EVENT_VOLUME_CREATED: _created,
    msg.EVENT_VOLUME_EXTENDED: _extended,
    msg.EVENT_VOLUME_DELETED: _deleted,
    msg.EVENT_VOLUME_UPLOADED: _uploaded,
    msg.EVENT_VOLUME_SNAPSHOT_CREATED: _snapshot_created,
    msg.EVENT_VOLUME_SNAPSHOT_DELETED: _snapshot_deleted,
    msg.EVENT_VOLUME_ACTION_FAILED: _failed,
}


# --- deadlines


# The states check_deadlines looks for (each of its reads asks for some of them).
_VOLUME_WAITS = (statuses.CREATING, statuses.DOWNLOADING, statuses.EXTENDING, statuses.UPLOADING,
                 statuses.DELETING)
_SNAPSHOT_WAITS = (statuses.CREATING, statuses.DELETING)


def check_deadlines() -> dict[str, int]:
    """One sweep (the conductor's reconcile): requests whose host has not answered in time end in
    an error a user can read; deletes are sent again. What it did, counted."""
    if not (Volume.objects.filter(status__in=_VOLUME_WAITS).exists()
            or VolumeSnapshot.objects.filter(status__in=_SNAPSHOT_WAITS).exists()):
        # Nearly every sweep: nothing under way, and the six reads below (whole rows with their
        # hosts, through the ORM) cost 7 ms of CPU for nothing, every reconcile interval.
        return {}
    now = timezone.now()

    def older(seconds: int) -> dict[str, Any]:
        return {"updated_at__lt": now - timedelta(seconds=seconds)}

    done: dict[str, int] = {}
    volumes = Volume.objects.select_related("host")
    for volume in volumes.filter(status__in=(statuses.CREATING, statuses.DOWNLOADING),
                                 **older(CREATE_DEADLINE)):
        if transitions.move(volume.pk, statuses.ERROR, status_reason=_no_answer(volume)):
            done["volumes failed"] = done.get("volumes failed", 0) + 1
    for volume in volumes.filter(status=statuses.EXTENDING, **older(EXTEND_DEADLINE)):
        if transitions.move(volume.pk, statuses.ERROR_EXTENDING,
                            status_reason=_no_answer(volume)):
            done["extends failed"] = done.get("extends failed", 0) + 1
    for volume in volumes.filter(status=statuses.UPLOADING, **older(UPLOAD_DEADLINE)):
        _back_from_upload(volume, _no_answer(volume))
        done["uploads ended"] = done.get("uploads ended", 0) + 1
    for volume in volumes.filter(status=statuses.DELETING, host__isnull=False,
                                 **older(RESEND_AFTER)):
        with transaction.atomic():
            # Touched, so the next re-send waits its turn.
            if Volume.objects.filter(pk=volume.pk, status=statuses.DELETING).update(
                    updated_at=now) and volume.host is not None:
                rpc.to_volume_host(volume.host.name, msg.TASK_DELETE_VOLUME, msg.VolumeRequest(
                    request_id=f"req-redelete-{volume.pk}", volume_id=str(volume.pk)))
                done["deletes re-sent"] = done.get("deletes re-sent", 0) + 1
    snapshots = VolumeSnapshot.objects.select_related("volume__host")
    for snapshot in snapshots.filter(status=statuses.CREATING, **older(SNAPSHOT_DEADLINE)):
        if transitions.move_snapshot(snapshot.pk, statuses.ERROR,
                                     status_reason=_no_answer(snapshot.volume)):
            done["snapshots failed"] = done.get("snapshots failed", 0) + 1
    for snapshot in snapshots.filter(status=statuses.DELETING, volume__status__in=(
            statuses.AVAILABLE, statuses.IN_USE, statuses.ERROR), **older(RESEND_AFTER)):
        host = snapshot.volume.host
        with transaction.atomic():
            if VolumeSnapshot.objects.filter(pk=snapshot.pk, status=statuses.DELETING).update(
                    updated_at=now) and host is not None:
                rpc.to_volume_host(host.name, msg.TASK_DELETE_VOLUME_SNAPSHOT, msg.VolumeRequest(
                    request_id=f"req-redelete-{snapshot.pk}", volume_id=str(snapshot.volume_id),
                    snapshot_id=str(snapshot.pk)))
                done["snapshot deletes re-sent"] = done.get("snapshot deletes re-sent", 0) + 1
    if done:
        log.warning("volume deadlines: %s", done)
    return done


def _no_answer(volume: Volume) -> str:
    return NO_ANSWER.format(host=volume.host.name if volume.host else "(none)")
