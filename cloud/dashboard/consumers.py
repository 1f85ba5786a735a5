"""The websocket behind live status cells: /ws/instances/ (routing.py).

A plain sync consumer (the work is a database read and a template render, not async by nature). It
authenticates by the Django session (AuthMiddlewareStack in routing.py), joins the group of the
project selected in that session, and for every change published by live.py sends the changed
row rendered for this user — so the buttons it carries are the ones this user may press.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from asgiref.sync import async_to_sync
from channels.generic.websocket import JsonWebsocketConsumer
from django.template.loader import render_to_string

from cloud import errors
from cloud.compute import host_drains
from cloud.compute import host_failures as hf
from cloud.identity import policy

from . import drains, host_failures, live, tables
from .context import select

# Close codes in the 4000 range are the application's own (RFC 6455 7.4.2).
CLOSE_SIGNED_OUT = 4401
CLOSE_FORBIDDEN = 4403


class InstanceStatusConsumer(JsonWebsocketConsumer):
    group: str | None = None

    def _context(self):
        selection = select(self.scope.get("user"), self.scope.get("session") or {})
        ctx = selection.ctx
        if ctx is None or not policy.allowed(ctx, "compute:servers:index"):
            return None
        return ctx

    def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            self.close(code=CLOSE_SIGNED_OUT)
            return
        ctx = self._context()
        if ctx is None:
            self.close(code=CLOSE_FORBIDDEN)
            return
        self.group = live.group_for(ctx.project_id)
        async_to_sync(self.channel_layer.group_add)(self.group, self.channel_name)
        self.accept()
        self.send_json({"type": "hello", "project": ctx.project_id})

    def disconnect(self, code: int) -> None:
        if self.group is not None:
            async_to_sync(self.channel_layer.group_discard)(self.group, self.channel_name)

    def receive_json(self, content: Any, **kwargs: Any) -> None:
        """The page says nothing; anything it sends is ignored."""

    def instance_changed(self, event: dict) -> None:
        # Roles are read again for every change, as for every HTTP request.
        ctx = self._context()
        if ctx is None or live.group_for(ctx.project_id) != self.group:
            self.close(code=CLOSE_FORBIDDEN)
            return
        row = tables.row_for(ctx, event["uuid"])
        if row is None:
            return
        self.send_json(message_for(row))


class HostMovesConsumer(JsonWebsocketConsumer):
    """/ws/host-moves/?drain=<id>: the guests' table of one drain, sent again whenever a move on
    its host changes (compute:host_drains:show). /ws/host-moves/?failure=<id>: a host failure's
    state, timeline and guests, sent again at every change of its host (host_failures.VIEW_RULE).
    Admins only, checked again at every change."""

    drain_id: str = ""
    failure_id: str = ""

    def _allowed(self) -> bool:
        selection = select(self.scope.get("user"), self.scope.get("session") or {})
        rule = host_failures.VIEW_RULE if self.failure_id else "compute:host_drains:show"
        return selection.ctx is not None and policy.allowed(selection.ctx, rule)

    def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            self.close(code=CLOSE_SIGNED_OUT)
            return
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        self.drain_id = (query.get("drain") or [""])[0]
        self.failure_id = "" if self.drain_id else (query.get("failure") or [""])[0]
        if not self._allowed():
            self.close(code=CLOSE_FORBIDDEN)
            return
        async_to_sync(self.channel_layer.group_add)(live.MOVES_GROUP, self.channel_name)
        self.accept()
        # What changed between the page's render and this connection is sent at once.
        self._send()

    def disconnect(self, code: int) -> None:
        async_to_sync(self.channel_layer.group_discard)(live.MOVES_GROUP, self.channel_name)

    def receive_json(self, content: Any, **kwargs: Any) -> None:
        """The page says nothing; anything it sends is ignored."""

    def host_moves(self, event: dict) -> None:
        if not self._allowed():
            self.close(code=CLOSE_FORBIDDEN)
            return
        self._send(event.get("host"))

    def _send(self, host: str | None = None) -> None:
        if self.failure_id:
            self._send_failure(host)
        else:
            self._send_drain(host)

    def _send_drain(self, host: str | None) -> None:
        try:
            drain = host_drains.get(self.drain_id)
        except errors.NotFound:
            return
        if host is not None and host != drain.host:
            return
        self.send_json({"type": "drain", "id": str(drain.uuid), "status": drain.status,
                        "html": drains.render_guests(drain)})

    def _send_failure(self, host: str | None) -> None:
        try:
            failure = hf.get(self.failure_id)
        except errors.NotFound:
            return
        if host is not None and host != failure.host:
            return
        self.send_json({"type": "failure", "id": str(failure.uuid), "status": failure.status,
                        "closed": failure.closed_at is not None,
                        "html": host_failures.render_failure(failure)})


def message_for(row: tables.Row) -> dict:
    """What a page needs to show a change: the new status, and the row and badge as HTML."""
    instance = row.instance
    return {
        "type": "instance",
        "uuid": str(instance.uuid),
        "status": instance.status,
        "task_state": instance.task_state,
        "deleted": instance.deleted,
        "row": render_to_string("dashboard/fragments/instance_row.html", {"row": row}),
        "badge": render_to_string("dashboard/fragments/status.html", {"instance": instance}),
    }
