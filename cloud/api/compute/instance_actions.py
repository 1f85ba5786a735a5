"""/servers/{id}/os-instance-actions[/{request_id}]: what was done to a server, and by whom."""

from __future__ import annotations

import hashlib

from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response

from cloud import errors
from cloud.compute import action_records
from cloud.compute.models import Instance, InstanceAction, InstanceActionEvent
from cloud.identity import policy

from ..base import ComputeView
from . import bodies, params


class _ActionsView(ComputeView):
    def server(self, server_id: str) -> Instance:
        # Looked up before the rule is checked, as ComputeView.authorized_server. From 2.21 the history of a deleted server stays readable (Nova's rule, which Tempest's
        # InstanceActionsV221TestJSON checks with a project reader).
        include_deleted = self.version.at_least("2.21") and policy.allowed(
            self.ctx, "compute:instance_actions:deleted"
        )
        return action_records.server_with_history(
            self.ctx, server_id, include_deleted=include_deleted
        )

    def action_body(self, action: InstanceAction, instance: Instance) -> dict:
        body = {
            "action": action.action,
            "instance_uuid": str(instance.uuid),
            "request_id": action.request_id,
            "user_id": action.user_id,
            "project_id": action.project_id,
            "start_time": bodies.iso_micro(action.start_time),
            "message": action.message,
        }
        if self.version.at_least("2.58"):
            body["updated_at"] = bodies.iso_micro(action.updated_at)
        return body


class InstanceActionList(_ActionsView):
    query_params = {"GET": ("limit", "marker", "changes-since", "changes-before")}

    def get(self, request: Request, server_id: str) -> Response:
        instance = self.server(server_id)
        self.authorize("compute:instance_actions:index")
        # Paging and changes-since arrived with 2.58; malformed values are refused at any version.
        query = request.query_params
        limit = params.limit_param(query)
        changes_since = params.datetime_param(query, "changes-since")
        changes_before = params.datetime_param(query, "changes-before")
        marker = query.get("marker")
        if not self.version.at_least("2.58"):
            limit = marker = changes_since = None
        if not self.version.at_least("2.66"):
            changes_before = None
        if changes_since and changes_before and changes_before < changes_since:
            raise errors.BadRequest("The value of changes-since must be less than or equal to "
                                    "changes-before.")
        actions = action_records.list_actions(
            instance, limit=limit, marker=marker, changes_since=changes_since,
            changes_before=changes_before,
        )
        body: dict = {"instanceActions": [self.action_body(a, instance) for a in actions]}
        url = self.compute_url("servers", str(instance.uuid), "os-instance-actions")
        links = params.next_link(url, actions, limit, lambda a: a.request_id)
        if links:
            body["links"] = links
        return Response(body)


class InstanceActionItem(_ActionsView):
    def get(self, request: Request, server_id: str, request_id: str) -> Response:
        instance = self.server(server_id)
        self.authorize("compute:instance_actions:show")
        action = action_records.get_action(instance, request_id)
        body = self.action_body(action, instance)
        # Before 2.51 only admins see events; from 2.51 everyone does, the traceback still
        # admin-only. 2.62 adds the event's hostId (everyone) and host (admins); 2.84 its details.
        admin = policy.allowed(self.ctx, "compute:instance_actions:events")
        if self.version.at_least("2.51") or admin:
            shown = {
                "traceback": admin
                and policy.allowed(self.ctx, "compute:instance_actions:events:traceback"),
                "host": admin and self.version.at_least("2.62"),
                "hostId": self.version.at_least("2.62"),
                "details": self.version.at_least("2.84")
                and policy.allowed(self.ctx, "compute:instance_actions:events:details"),
            }
            project = action.project_id or instance.project_id
            body["events"] = [_event_body(e, shown, project) for e in action.events.all()]
        return Response({"instanceAction": body})


def _event_body(event: InstanceActionEvent, shown: dict[str, bool], project_id: str) -> dict:
    body = {
        "event": event.event,
        "start_time": bodies.iso_micro(event.start_time),
        "finish_time": bodies.iso_micro(event.finish_time),
        "result": event.result,
    }
    if shown["traceback"]:
        body["traceback"] = event.traceback
    if shown["host"]:
        body["host"] = event.host
    if shown["hostId"]:
        host = event.host or ""
        body["hostId"] = hashlib.sha224((project_id + host).encode()).hexdigest() if host else ""
    if shown["details"]:
        body["details"] = event.details
    return body


urlpatterns = [
    path("/servers/<str:server_id>/os-instance-actions", InstanceActionList.as_view()),
    path(
        "/servers/<str:server_id>/os-instance-actions/<str:request_id>",
        InstanceActionItem.as_view(),
    ),
]
