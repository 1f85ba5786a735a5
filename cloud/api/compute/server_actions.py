"""POST /servers/{id}/action: one view reads the action's name (the body's single key) and hands its
value to that action's handler.

Adding an action: a handler `(view, instance, args) -> Response` that validates `args` and calls one
service function (cloud/compute/server_actions.py), and one row in ACTIONS naming its policy rule
(cloud/identity/policy.py). A state rule, if the action has one, goes in
cloud/compute/states.py TRANSITIONS and is checked by the service function.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response

from cloud.compute import server_actions, services
from cloud.compute.models import Instance

from .. import errors
from ..base import ComputeView
from ..validation import validate

# lock/unlock take null or an object; its locked_reason arrives at 2.73, above our maximum, so
# whatever an object holds is ignored.
_NULL_OR_OBJECT = {"type": ["null", "object"]}
_RESET_STATE = {
    "type": "object",
    "required": ["state"],
    "properties": {"state": {"enum": sorted(server_actions.RESET_STATES)}},
    "additionalProperties": False,
}


def _lock(view: ServerAction, instance: Instance, args: Any) -> Response:
    validate(_NULL_OR_OBJECT, args)
    server_actions.lock_server(view.ctx, instance)
    return Response(status=202)


def _unlock(view: ServerAction, instance: Instance, args: Any) -> Response:
    validate(_NULL_OR_OBJECT, args)
    server_actions.unlock_server(view.ctx, instance)
    return Response(status=202)


def _reset_state(view: ServerAction, instance: Instance, args: Any) -> Response:
    validate(_RESET_STATE, args)
    server_actions.reset_state(view.ctx, instance, args["state"])
    return Response(status=202)


@dataclass(frozen=True)
class Action:
    rule: str
    handler: Callable[[ServerAction, Instance, Any], Response]


ACTIONS: dict[str, Action] = {
    "lock": Action("compute:servers:lock", _lock),
    "unlock": Action("compute:servers:unlock", _unlock),
    "os-resetState": Action("compute:servers:reset_state", _reset_state),
}


class ServerAction(ComputeView):
    def post(self, request: Request, server_id: str) -> Response:
        body = self.body()
        if len(body) != 1:
            raise errors.BadRequest("An action body holds exactly one key: the action's name.")
        ((name, args),) = body.items()
        action = ACTIONS.get(name)
        if action is None:
            raise errors.BadRequest(f"There is no server action named {name!r}.")
        self.authorize(action.rule)
        instance = services.get_server(self.ctx, server_id)
        return action.handler(self, instance, args)


urlpatterns = [path("/servers/<str:server_id>/action", ServerAction.as_view())]
