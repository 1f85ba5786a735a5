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

from cloud import errors
from cloud.compute import guest_operations, locks, servers
from cloud.compute.models import Instance
from cloud.validation import name_schema, validate

from ..base import ComputeView
from . import bodies, remote_consoles

# lock/unlock take null or an object; its locked_reason arrives at 2.73, above our maximum, so
# whatever an object holds is ignored.
_NULL_OR_OBJECT = {"type": ["null", "object"]}
_RESET_STATE = {
    "type": "object",
    "required": ["state"],
    "properties": {"state": {"enum": sorted(locks.RESET_STATES)}},
    "additionalProperties": False,
}


def _lock(view: ServerAction, instance: Instance, args: Any) -> Response:
    validate(_NULL_OR_OBJECT, args)
    locks.lock_server(view.ctx, instance)
    return Response(status=202)


def _unlock(view: ServerAction, instance: Instance, args: Any) -> Response:
    validate(_NULL_OR_OBJECT, args)
    locks.unlock_server(view.ctx, instance)
    return Response(status=202)


def _reset_state(view: ServerAction, instance: Instance, args: Any) -> Response:
    validate(_RESET_STATE, args)
    locks.reset_state(view.ctx, instance, args["state"])
    return Response(status=202)


_NULL = {"type": ["null", "object"], "maxProperties": 0}
_REBOOT = {
    "type": "object",
    "required": ["type"],
    "properties": {"type": {"type": "string", "pattern": "^([Hh][Aa][Rr][Dd]|[Ss][Oo][Ff][Tt])$"}},
    "additionalProperties": False,
}
_REBUILD = {
    "type": "object",
    "required": ["imageRef"],
    "properties": {
        "imageRef": {"type": "string", "minLength": 1},
        "name": name_schema(),
        "metadata": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 255}},
        "user_data": {"type": ["string", "null"], "maxLength": 65535},
        "adminPass": {"type": "string"},
        "accessIPv4": {"type": "string"},
        "accessIPv6": {"type": "string"},
        "OS-DCF:diskConfig": {"enum": ["AUTO", "MANUAL"]},
        "preserve_ephemeral": {"type": "boolean"},
        "description": {"type": ["string", "null"], "maxLength": 255},
        "key_name": {"type": ["string", "null"]},
    },
    "additionalProperties": False,
}
_RESIZE = {
    "type": "object",
    "required": ["flavorRef"],
    "properties": {
        "flavorRef": {"type": ["string", "integer"], "minLength": 1},
        "OS-DCF:diskConfig": {"enum": ["AUTO", "MANUAL"]},
    },
    "additionalProperties": False,
}
_CREATE_IMAGE = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": name_schema(),
        "metadata": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 255}},
    },
    "additionalProperties": False,
}
_CONSOLE_OUTPUT = {
    "type": ["object", "null"],
    "properties": {"length": {"type": ["integer", "string", "null"], "pattern": "^-?[0-9]+$"}},
    "additionalProperties": False,
}


def _power(name: str):
    def handler(view: ServerAction, instance: Instance, args: Any) -> Response:
        validate(_NULL, args)
        guest_operations.power(view.ctx, instance, name)
        return Response(status=202)

    return handler


def _reboot(view: ServerAction, instance: Instance, args: Any) -> Response:
    validate(_REBOOT, args)
    guest_operations.reboot(view.ctx, instance, args["type"])
    return Response(status=202)


def _rebuild(view: ServerAction, instance: Instance, args: Any) -> Response:
    validate(_REBUILD, args)
    row = guest_operations.rebuild(
        view.ctx, instance, args["imageRef"], name=args.get("name"),
        metadata=args.get("metadata"), user_data=args.get("user_data"),
    )
    body = bodies.server_reduced(row, view.version, view.compute_url, view.ctx.is_admin)
    return Response({"server": body}, status=202)


def _resize(view: ServerAction, instance: Instance, args: Any) -> Response:
    validate(_RESIZE, args)
    guest_operations.resize(view.ctx, instance, str(args["flavorRef"]))
    return Response(status=202)


def _confirm_resize(view: ServerAction, instance: Instance, args: Any) -> Response:
    validate(_NULL, args)
    guest_operations.confirm_resize(view.ctx, instance)
    return Response(status=204)


def _revert_resize(view: ServerAction, instance: Instance, args: Any) -> Response:
    validate(_NULL, args)
    guest_operations.revert_resize(view.ctx, instance)
    return Response(status=202)


def _create_image(view: ServerAction, instance: Instance, args: Any) -> Response:
    validate(_CREATE_IMAGE, args)
    image_id = guest_operations.create_image(view.ctx, instance, args["name"], args.get("metadata", {}))
    if view.version.at_least("2.45"):
        return Response({"image_id": image_id}, status=202)
    response = Response(status=202)
    response["Location"] = f"{view.base_url()}/image/v2/images/{image_id}"
    return response


def _console_output(view: ServerAction, instance: Instance, args: Any) -> Response:
    validate(_CONSOLE_OUTPUT, args)
    length = (args or {}).get("length")
    length = None if length is None else int(length)
    if length is not None and length < 0:
        length = None  # Nova reads a negative length as "all of it"
    output = guest_operations.console_output(view.ctx, instance, length)
    return Response({"output": output})


@dataclass(frozen=True)
class Action:
    rule: str
    handler: Callable[[ServerAction, Instance, Any], Response]


ACTIONS: dict[str, Action] = {
    "lock": Action("compute:servers:lock", _lock),
    "unlock": Action("compute:servers:unlock", _unlock),
    "os-resetState": Action("compute:servers:reset_state", _reset_state),
    "os-start": Action("compute:servers:start", _power("start")),
    "os-stop": Action("compute:servers:stop", _power("stop")),
    "pause": Action("compute:servers:pause", _power("pause")),
    "unpause": Action("compute:servers:unpause", _power("unpause")),
    "suspend": Action("compute:servers:suspend", _power("suspend")),
    "resume": Action("compute:servers:resume", _power("resume")),
    "reboot": Action("compute:servers:reboot", _reboot),
    "rebuild": Action("compute:servers:rebuild", _rebuild),
    "resize": Action("compute:servers:resize", _resize),
    "confirmResize": Action("compute:servers:confirm_resize", _confirm_resize),
    "revertResize": Action("compute:servers:revert_resize", _revert_resize),
    "createImage": Action("compute:servers:create_image", _create_image),
    "os-getConsoleOutput": Action("compute:servers:console_output", _console_output),
    "os-getVNCConsole": Action(remote_consoles.RULE, remote_consoles.get_vnc_console),
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
        instance = servers.get_server(self.ctx, server_id)
        return action.handler(self, instance, args)


urlpatterns = [path("/servers/<str:server_id>/action", ServerAction.as_view())]
