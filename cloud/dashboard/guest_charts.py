"""Live charts of one instance's CPU, memory, disk and network on its overview page.

The conductor records each host's guest statistics (cloud/compute/guest_stats.py) and announces
them (events.GUEST_STATS_RECORDED); `on_guest_stats_recorded` passes that on as one message per
report to the Channels group of the host, carrying ids only. A page's websocket
(/ws/guest-stats/?instance=<uuid>, `GuestStatsConsumer`) belongs to the group of its instance's
host and to its project's instance-change group: when its instance is in a report it reads the new
point from the store itself, with its user's context, and when its instance moves it follows it
to the new host's group. One message per host report, whatever the number of guests or viewers.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qs

from asgiref.sync import async_to_sync
from channels.generic.websocket import JsonWebsocketConsumer
from channels.layers import get_channel_layer

from cloud import errors
from cloud.compute import guest_stats, servers
from cloud.compute.models import Instance
from cloud.identity import policy
from cloud.identity.context import RequestContext

from . import live
from .context import select

log = logging.getLogger(__name__)

RULE = "compute:servers:show"
EVENT_TYPE = "guest.stats"  # handled by GuestStatsConsumer.guest_stats
# Points a page starts with: the whole kept history (KUMO_GUEST_STATS_HISTORY samples).
CLOSE_SIGNED_OUT = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404


def group_for(host: str) -> str:
    return f"guest-stats.{host}"


def on_guest_stats_recorded(sender: object, host: str, instance_uuids: list[str],
                            **_: object) -> None:
    """The receiver of events.GUEST_STATS_RECORDED."""
    try:
        layer = get_channel_layer()
        if layer is not None:
            # As instance changes: on the process's one loop, and only if a chart is open.
            live.group_send(layer, group_for(host), {"type": EVENT_TYPE, "uuids": instance_uuids})
    except Exception:  # a missed chart point is logged, never fatal to the report
        log.warning("could not publish the statistics of host %s", host, exc_info=True)


class GuestStatsConsumer(JsonWebsocketConsumer):
    instance_uuid: str = ""
    host_group: str | None = None
    project_group: str | None = None

    def _instance(self) -> tuple[RequestContext, Instance] | None:
        """The instance as this user may see it now (roles are read again each time)."""
        selection = select(self.scope.get("user"), self.scope.get("session") or {})
        ctx = selection.ctx
        if ctx is None or not policy.allowed(ctx, RULE):
            return None
        try:
            return ctx, servers.get_server(ctx, self.instance_uuid)
        except errors.NotFound:
            return None

    def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            self.close(code=CLOSE_SIGNED_OUT)
            return
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        self.instance_uuid = (query.get("instance") or [""])[0]
        found = self._instance()
        if found is None:
            self.close(code=CLOSE_NOT_FOUND)
            return
        ctx, instance = found
        self.accept()
        if ctx.project_id is not None:
            self.project_group = live.group_for(ctx.project_id)
            async_to_sync(self.channel_layer.group_add)(self.project_group, self.channel_name)
        self._follow(instance.host)
        self.send_json({"type": "history", "uuid": self.instance_uuid,
                        "points": guest_stats.chart(instance)})

    def _follow(self, host: str | None) -> None:
        group = group_for(host) if host else None
        if group == self.host_group:
            return
        if self.host_group is not None:
            async_to_sync(self.channel_layer.group_discard)(self.host_group, self.channel_name)
        self.host_group = group
        if group is not None:
            async_to_sync(self.channel_layer.group_add)(group, self.channel_name)

    def disconnect(self, code: int) -> None:
        for group in (self.host_group, self.project_group):
            if group is not None:
                async_to_sync(self.channel_layer.group_discard)(group, self.channel_name)

    def receive_json(self, content: Any, **kwargs: Any) -> None:
        """The page says nothing; anything it sends is ignored."""

    def guest_stats(self, event: dict) -> None:
        if self.instance_uuid not in event.get("uuids", ()):
            return
        if self._instance() is None:
            self.close(code=CLOSE_FORBIDDEN)
            return
        point = guest_stats.newest_point(self.instance_uuid)
        if point is not None:
            self.send_json({"type": "point", "uuid": self.instance_uuid, "point": point})

    def instance_changed(self, event: dict) -> None:
        """An instance of the project changed: if it is ours, it may have moved host."""
        if event.get("uuid") != self.instance_uuid:
            return
        found = self._instance()
        if found is None:
            self.close(code=CLOSE_FORBIDDEN)
            return
        self._follow(found[1].host)
