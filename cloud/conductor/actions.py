"""Instance action events: what happened during an action, as `openstack server event show` shows.

Control-plane steps record their event on the instance's latest action (the one the API opened).
"""

from __future__ import annotations

from django.utils import timezone

from cloud.compute.models import InstanceAction, InstanceActionEvent

SUCCESS = "Success"
ERROR = "Error"

EVENT_SCHEDULE = "scheduler_schedule_instance"
EVENT_SPAWN = "compute_build_and_run_instance"
EVENT_TERMINATE = "compute_terminate_instance"
EVENT_BUILD_TIMEOUT = "conductor_build_timeout"


def record_event(
    instance_uuid: str,
    event: str,
    result: str,
    *,
    host: str | None = None,
    details: str | None = None,
    traceback: str | None = None,
    finish_action: bool = False,
) -> InstanceActionEvent | None:
    """Add a finished event to the latest action; mark the action failed on Error, and finished
    when `finish_action`. Nothing happens when the instance has no action."""
    action = InstanceAction.objects.filter(instance_id=instance_uuid).order_by(
        "-start_time", "-id"
    ).first()
    if action is None:
        return None
    now = timezone.now()
    recorded = InstanceActionEvent.objects.create(
        action=action,
        event=event,
        result=result,
        host=host,
        details=details,
        traceback=traceback,
        finish_time=now,
    )
    changes: dict[str, object] = {}
    if result == ERROR:
        changes["message"] = ERROR
    if finish_action:
        changes["finish_time"] = now
    if changes:
        InstanceAction.objects.filter(pk=action.pk).update(updated_at=now, **changes)
    return recorded
