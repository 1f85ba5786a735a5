"""Live instance status: whoever changes an instance row announces it (cloud/events.py), this module
listens (wired in apps.py), and every dashboard watching that instance's project hears about it over
its websocket (consumers.py). No page polls.

Only the instance id travels, and only after the change is committed: each websocket then reads the
row itself, with its own user's context, so a message can never show a page more than its user
may see, nor a state the database does not hold.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from typing import Any

import redis
from asgiref.sync import async_to_sync
from channels.layers import BaseChannelLayer, get_channel_layer

from cloud.compute.models import Instance

log = logging.getLogger(__name__)

EVENT_TYPE = "instance.changed"  # handled by InstanceStatusConsumer.instance_changed


_publisher: tuple[int, asyncio.AbstractEventLoop] | None = None
_publisher_lock = threading.Lock()


def _publisher_loop() -> asyncio.AbstractEventLoop:
    """This process's event loop for sending to Redis, on a thread of its own (made again in a
    forked child, whose copy of the thread does not run)."""
    global _publisher
    with _publisher_lock:
        if _publisher is None or _publisher[0] != os.getpid():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="live-publisher", daemon=True).start()
            _publisher = (os.getpid(), loop)
        return _publisher[1]


_probes: dict[tuple[int, str], redis.Redis] = {}


def _listened(layer: BaseChannelLayer, group: str) -> bool:
    """Whether the group has a member, asked with one EXISTS on the Redis that holds it, from this
    thread. Most changes happen with no dashboard open on their project: channels_redis's own
    group_send would still hand the message to the publisher loop's thread and ask Redis twice
    (expire stale members, list them) to find nobody, 1.1 ms of the web process's CPU per boot
    and its share of the conductor's. An empty group's sorted set is gone from Redis (the last
    group_discard removed its last member, or its expiry did), so a missing key is no listener.
    A dashboard that joins just after this check missed the change as it would have missed one a
    moment earlier: the page it opened read the rows itself. Anything unexpected counts as
    listened, so the layer decides."""
    try:
        host = layer.hosts[layer.consistent_hash(group)]
        key = layer._group_key(group)
        address = host.get("address")
        if not isinstance(address, str) or len(host) != 1:
            return True  # sentinels, keyword hosts: not worth a second way to reach them
        probe = _probes.get((os.getpid(), address))
        if probe is None:
            # Never waits longer than the send it stands before (future.result's 5 s).
            probe = _probes[(os.getpid(), address)] = redis.Redis.from_url(
                address, socket_timeout=5, socket_connect_timeout=5)
        return bool(probe.exists(key))
    except Exception:  # noqa: BLE001 - the layer will say what is wrong; the caller logs it
        return True


def group_send(layer: BaseChannelLayer, group: str, message: dict[str, Any]) -> None:
    """Send from sync code, and wait until it is sent. Through Redis, on one long-lived loop:
    async_to_sync made a new event loop, and channels_redis a new connection to Redis, for each
    message (1.6 ms of the web process's CPU, three times for a boot and its delete), and only
    when someone is in the group (_listened). Any other layer (the in-memory one of the tests,
    whose consumers share the caller's loop) as before."""
    if type(layer).__module__.startswith("channels_redis"):
        if not _listened(layer, group):
            return
        future = asyncio.run_coroutine_threadsafe(layer.group_send(group, message),
                                                  _publisher_loop())
        future.result(timeout=5)
    else:
        async_to_sync(layer.group_send)(group, message)


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
        group_send(layer, group_for(project_id), {"type": EVENT_TYPE, "uuid": instance_uuid})
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
            group_send(layer, MOVES_GROUP, {"type": MOVES_EVENT_TYPE, "host": host})
    except Exception:  # a missed live update is logged, never fatal
        log.warning("could not publish the moves of host %s", host, exc_info=True)
