"""POST /servers/{id}/action: the body's single key names an operation (cloud/compute/operations.py,
by its `api_name`); the view checks the operation's policy rule, reads the arguments and performs it.

Only what is particular to this API lives here: the JSON Schema of an operation's arguments and how
they map onto the runner's keywords (`_ARGUMENTS`, default: no arguments, `null` or `{}`), and the
response when it is not an empty 202 (`_RESPONSES`). An operation with no arguments needs no line
here at all. os-getVNCConsole is not an operation on the server; it keeps a row of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response

from cloud import errors
from cloud.compute import operations, servers
from cloud.compute.models import Instance
from cloud.validation import name_schema, validate

from ..base import ComputeView
from . import bodies, remote_consoles

_NULL = {"type": ["null", "object"], "maxProperties": 0}
# lock/unlock take null or an object; its locked_reason arrives at 2.73, above our maximum, so
# whatever an object holds is ignored.
_NULL_OR_OBJECT = {"type": ["null", "object"]}
_RESET_STATE = {
    "type": "object",
    "required": ["state"],
    "properties": {"state": {"enum": sorted(servers.RESET_STATES)}},
    "additionalProperties": False,
}
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

Arguments = tuple[str, dict[str, Any]]  # (operation name, runner keywords)


def _reboot(name: str, args: dict) -> Arguments:
    hard = args["type"].upper() == "HARD"
    return ("reboot_hard" if hard else name), {}


def _rebuild(name: str, args: dict) -> Arguments:
    return name, {"image_ref": args["imageRef"], "name": args.get("name"),
                  "metadata": args.get("metadata"), "user_data": args.get("user_data")}


def _console_output(name: str, args: dict | None) -> Arguments:
    length = (args or {}).get("length")
    length = None if length is None else int(length)
    if length is not None and length < 0:
        length = None  # Nova reads a negative length as "all of it"
    return name, {"length": length}


# Live migration: block_migration "auto" from 2.25 (true/false before, with disk_over_commit, which
# Kumo ignores: it never over-commits a disk), force 2.30-2.67 (ignored: the destination is always
# checked); the host may be null (the scheduler chooses).
_LIVE_MIGRATE = {
    "type": "object",
    "required": ["block_migration", "host"],
    "properties": {
        "host": {"type": ["string", "null"], "minLength": 1, "maxLength": 255},
        "block_migration": {"anyOf": [{"type": "boolean"}, {"enum": ["auto"]},
                                      {"type": "string", "pattern": "^(?i:true|false)$"}]},
        "disk_over_commit": {"type": ["boolean", "string"]},
        "force": {"type": "boolean"},
    },
    "additionalProperties": False,
}
# Cold migration: null, or {"host": …} from 2.56.
_MIGRATE = {
    "type": ["null", "object"],
    "properties": {"host": {"type": ["string", "null"], "minLength": 1, "maxLength": 255}},
    "additionalProperties": False,
}


# By operation name: the schema of the body's value, and how it becomes the runner's keywords.
_ARGUMENTS: dict[str, tuple[dict, Callable[[str, Any], Arguments]]] = {
    "lock": (_NULL_OR_OBJECT, lambda name, args: (name, {})),
    "unlock": (_NULL_OR_OBJECT, lambda name, args: (name, {})),
    "reset_state": (_RESET_STATE, lambda name, args: (name, {"state": args["state"]})),
    "reboot": (_REBOOT, _reboot),
    "rebuild": (_REBUILD, _rebuild),
    "resize": (_RESIZE, lambda name, args: (name, {"flavor_ref": str(args["flavorRef"])})),
    "snapshot": (_CREATE_IMAGE, lambda name, args: (
        name, {"name": args["name"], "metadata": args.get("metadata", {})})),
    "console_output": (_CONSOLE_OUTPUT, _console_output),
    "live_migrate": (_LIVE_MIGRATE, lambda name, args: (name, {"host": args.get("host")})),
    "migrate": (_MIGRATE, lambda name, args: (name, {"host": (args or {}).get("host")})),
}
_NO_ARGUMENTS: tuple[dict, Callable[[str, Any], Arguments]] = (_NULL, lambda name, args: (name, {}))


def _rebuilt(view: ServerAction, row: Instance) -> Response:
    body = bodies.server_reduced(row, view.version, view.compute_url, view.ctx.is_admin)
    return Response({"server": body}, status=202)


def _image_made(view: ServerAction, image_id: str) -> Response:
    if view.version.at_least("2.45"):
        return Response({"image_id": image_id}, status=202)
    response = Response(status=202)
    response["Location"] = f"{view.base_url()}/image/v2/images/{image_id}"
    return response


# By operation name: the response from what the runner returned (default: an empty 202).
_RESPONSES: dict[str, Callable[[ServerAction, Any], Response]] = {
    "rebuild": _rebuilt,
    "snapshot": _image_made,
    "confirm_resize": lambda view, _: Response(status=204),
    "console_output": lambda view, output: Response({"output": output}),
}


def _action_body() -> dict:
    """The body as /openapi.json publishes it: one key, an operation's API name, whose value is
    described by the same argument schema the view validates it with."""
    actions = {
        api_name: _ARGUMENTS.get(operation.name, _NO_ARGUMENTS)[0]
        for api_name, operation in operations.BY_API_NAME.items()
        if operation.rule is not None
    }
    actions["os-getVNCConsole"] = remote_consoles.GET_VNC_CONSOLE
    return {"type": "object", "minProperties": 1, "maxProperties": 1, "properties": actions,
            "additionalProperties": False}


class ServerAction(ComputeView):
    # Documentation only: the view dispatches on the key and validates the arguments itself.
    body_schemas = {"POST": _action_body()}

    def post(self, request: Request, server_id: str) -> Response:
        body = self.body()
        if len(body) != 1:
            raise errors.BadRequest("An action body holds exactly one key: the action's name.")
        ((key, args),) = body.items()
        if key == "os-getVNCConsole":
            instance = self.authorized_server(server_id, remote_consoles.RULE)
            return remote_consoles.get_vnc_console(self, instance, args)
        operation = operations.BY_API_NAME.get(key)
        if operation is None or operation.rule is None:
            raise errors.BadRequest(f"There is no server action named {key!r}.")
        instance = self.authorized_server(server_id, operation.rule)
        schema, read = _ARGUMENTS.get(operation.name, _NO_ARGUMENTS)
        validate(schema, args)
        name, keywords = read(operation.name, args)
        result = operations.perform(self.ctx, instance, name, **keywords)
        respond = _RESPONSES.get(operation.name)
        return respond(self, result) if respond else Response(status=202)


urlpatterns = [path("/servers/<str:server_id>/action", ServerAction.as_view())]
