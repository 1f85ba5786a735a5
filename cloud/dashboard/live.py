"""Live instance status: whoever changes an instance row announces it (cloud/events.py), this module
listens (wired in apps.py), and every dashboard watching that instance's project hears about it over
its websocket (consumers.py). No page polls.

Only the instance id travels, and only after the change is committed: each websocket then reads the
row itself, with its own user's context, so a message can never show a page more than its user
may see, nor a state the database does not hold.
"""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from cloud.compute.models import Instance

log = logging.getLogger(__name__)

EVENT_TYPE = "instance.changed"  # handled by InstanceStatusConsumer.instance_changed


def group_for(project_id: str) -> str:
    return f"instances.{project_id}"


def on_instance_changed(sender: object, instance_uuid: str, project_id: str | None = None,
                        **_: object) -> None:
    """The receiver of events.INSTANCE_CHANGED, which is sent after the change commits."""
    publish(instance_uuid, project_id)


def publish(instance_uuid: str, project_id: str | None = None) -> None:
    try:
        if project_id is None:  # the sender did not know it: read it
            project_id = (
                Instance.objects.filter(pk=instance_uuid).values_list("project_id", flat=True)
                .first()
            )
        layer = get_channel_layer()
        if project_id is None or layer is None:
            return
        async_to_sync(layer.group_send)(
            group_for(project_id), {"type": EVENT_TYPE, "uuid": instance_uuid}
        )
    except Exception:  # a missed live update is logged, never fatal
        log.warning("could not publish the change of instance %s", instance_uuid, exc_info=True)


# --- host moves (drains): admins watching a drain hear of every change of the drained host's moves

MOVES_GROUP = "host-moves"
MOVES_EVENT_TYPE = "host.moves"  # handled by HostMovesConsumer.host_moves


def on_host_moves_changed(sender: object, host: str, **_: object) -> None:
    """The receiver of events.HOST_MOVES_CHANGED (a drain's or a migration's change, committed)."""
    try:
        layer = get_channel_layer()
        if layer is not None:
            async_to_sync(layer.group_send)(MOVES_GROUP, {"type": MOVES_EVENT_TYPE, "host": host})
    except Exception:  # a missed live update is logged, never fatal
        log.warning("could not publish the moves of host %s", host, exc_info=True)
