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
from cloud.compute import operations, server_security_groups, servers, shelving
from cloud.compute.models import Instance
from cloud.validation import name_schema, validate

from ..base import ComputeView, Versioned
from . import bodies, evacuate, network_actions, remote_consoles, server_schemas
from .servers import normalise_v6

_NULL = {"type": ["null", "object"], "maxProperties": 0}
# lock/unlock take null or an object; before 2.73 whatever the object holds is ignored (as Nova
# does); from 2.73 lock takes a locked_reason.
_NULL_OR_OBJECT = {"type": ["null", "object"]}
_LOCK_273 = {
    "type": ["null", "object"],
    "properties": {"locked_reason": {"type": "string", "minLength": 1, "maxLength": 255}},
    "additionalProperties": False,
}
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

_UUID = {"type": "string", "format": "uuid"}
_RESCUE = {
    "type": ["object", "null"],
    "properties": {"adminPass": {"type": "string"}, "rescue_image_ref": _UUID},
    "additionalProperties": False,
}
_NON_NEGATIVE = {"type": ["integer", "string"], "pattern": "^[0-9]+$", "minimum": 0}
_CREATE_BACKUP = {
    "type": "object",
    "required": ["name", "backup_type", "rotation"],
    "properties": {
        "name": name_schema(),
        "backup_type": {"type": "string"},
        "rotation": _NON_NEGATIVE,
        "metadata": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 255}},
    },
    "additionalProperties": False,
}
# Unshelve: anything before 2.77 (Nova reads nothing from it); from 2.77 null or a zone; from 2.91
# a zone (null: unpinned) and/or, for admins, a host.
_UNSHELVE_277 = {
    "type": ["object", "null"],
    "required": ["availability_zone"],
    "properties": {"availability_zone": {"type": "string", "minLength": 1, "maxLength": 255}},
    "additionalProperties": False,
}
_UNSHELVE_291 = {
    "type": ["object", "null"],
    "minProperties": 1,
    "properties": {
        "availability_zone": {"type": ["string", "null"], "minLength": 1, "maxLength": 255},
        "host": {"type": "string", "minLength": 1, "maxLength": 255},
    },
    "additionalProperties": False,
}

Arguments = tuple[str, dict[str, Any]]  # (operation name, runner keywords)


def _reboot(name: str, args: dict) -> Arguments:
    hard = args["type"].upper() == "HARD"
    return ("reboot_hard" if hard else name), {}


def _lock(name: str, args: dict | None) -> Arguments:
    return name, {"reason": (args or {}).get("locked_reason")}


def _console_output(name: str, args: dict | None) -> Arguments:
    length = (args or {}).get("length")
    length = None if length is None else int(length)
    if length is not None and length < 0:
        length = None  # Nova reads a negative length as "all of it"
    return name, {"length": length}


def _rescue(name: str, args: dict | None) -> Arguments:
    args = args or {}
    return name, {"rescue_image_ref": args.get("rescue_image_ref"),
                  "admin_pass": args.get("adminPass")}


def _create_backup(name: str, args: dict) -> Arguments:
    return name, {"name": args["name"], "backup_type": args["backup_type"],
                  "rotation": int(args["rotation"]), "metadata": args.get("metadata", {})}


def _unshelve(name: str, args: dict | None) -> Arguments:
    # The view reads the version: below 2.77 the arguments never reach here (see ServerAction).
    if not args:
        return name, {}
    zone = args.get("availability_zone")
    return name, {"destination": shelving.UnshelveTo(
        zone=zone, unpin_zone="availability_zone" in args and zone is None,
        host=args.get("host"))}


# Live migration: block_migration and disk_over_commit (which Kumo ignores: it never over-commits a
# disk) until 2.24; from 2.25 block_migration may be "auto" and disk_over_commit is gone; force
# 2.30-2.67 (ignored: the destination is always checked); the host may be null (the scheduler
# chooses).
_HOST = {"type": ["string", "null"], "minLength": 1, "maxLength": 255,
         "pattern": "^[a-zA-Z0-9-._]*$"}


def _live_migrate(block_migration: dict, **extra: dict) -> dict:
    return {
        "type": "object",
        "required": ["block_migration", "host", *(k for k in extra if k == "disk_over_commit")],
        "properties": {"host": _HOST, "block_migration": block_migration, **extra},
        "additionalProperties": False,
    }


_BOOLEAN = server_schemas.BOOLEAN
_BOOLEAN_OR_AUTO = {"type": ["boolean", "string"],
                    "enum": [*server_schemas.BOOLEAN_VALUES, "auto"]}
_LIVE_MIGRATE = Versioned(
    ("2.1", _live_migrate(_BOOLEAN, disk_over_commit=_BOOLEAN)),
    ("2.25", _live_migrate(_BOOLEAN_OR_AUTO)),
    ("2.30", _live_migrate(_BOOLEAN_OR_AUTO, force=_BOOLEAN)),
    ("2.68", _live_migrate(_BOOLEAN_OR_AUTO)),
)
# Cold migration: null, or {"host": …}, which Nova reads from 2.56 (and ignores before).
_MIGRATE = {
    "type": ["null", "object"],
    "properties": {"host": _HOST},
    "additionalProperties": False,
}


# By operation name: the schema of the body's value, and how it becomes the runner's keywords.
_ARGUMENTS: dict[str, tuple[dict | Versioned, Callable[[str, Any], Arguments]]] = {
    "lock": (Versioned(("2.1", _NULL_OR_OBJECT), ("2.73", _LOCK_273)), _lock),
    "unlock": (_NULL_OR_OBJECT, lambda name, args: (name, {})),
    "reset_state": (_RESET_STATE, lambda name, args: (name, {"state": args["state"]})),
    "reboot": (_REBOOT, _reboot),
    "rebuild": (server_schemas.REBUILD, lambda name, args: (name, {})),
    "resize": (_RESIZE, lambda name, args: (name, {"flavor_ref": str(args["flavorRef"])})),
    "snapshot": (_CREATE_IMAGE, lambda name, args: (
        name, {"name": args["name"], "metadata": args.get("metadata", {})})),
    "console_output": (_CONSOLE_OUTPUT, _console_output),
    "live_migrate": (_LIVE_MIGRATE, lambda name, args: (name, {"host": args.get("host")})),
    "migrate": (_MIGRATE, lambda name, args: (name, {"host": (args or {}).get("host")})),
    "rescue": (_RESCUE, _rescue),
    "backup": (_CREATE_BACKUP, _create_backup),
    "unshelve": (Versioned(("2.1", _NULL_OR_OBJECT), ("2.77", _UNSHELVE_277),
                           ("2.91", _UNSHELVE_291)), _unshelve),
}
# Operations a microversion brought: below it the action does not exist (400, as Nova).
_SINCE = {"trigger_crash_dump": "2.17"}
UNSHELVE_TO_HOST = "compute:servers:unshelve:to_host"
# Keys of the action body that are not operations on the server's state: each has its rule, its
# argument schema and what it does.
_SECURITY_GROUP = {
    "type": "object",
    "required": ["name"],
    "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 255,
                            "pattern": r"\S"}},
    "additionalProperties": False,
}
_NO_ARGUMENTS: tuple[dict, Callable[[str, Any], Arguments]] = (_NULL, lambda name, args: (name, {}))


def _rebuilt(view: ServerAction, row: Instance) -> Response:
    row.refresh_from_db()
    body = bodies.server_show(row, view.version, view.compute_url, view.ctx.is_admin,
                              view=bodies.REBUILD)
    return Response({"server": body}, status=202)


def _image_made(view: ServerAction, image_id: str) -> Response:
    if view.version.at_least("2.45"):
        return Response({"image_id": image_id}, status=202)
    response = Response(status=202)
    response["Location"] = f"{view.base_url()}/image/v2/images/{image_id}"
    return response


def _backup_made(view: ServerAction, image_id: str) -> Response:
    if view.version.at_least("2.45"):
        return Response({"image_id": image_id}, status=202)
    response = Response(status=202)
    # As Nova: a Location only when the backup is kept (rotation above 0).
    if int(view.body()["createBackup"]["rotation"]) > 0:
        response["Location"] = f"{view.base_url()}/image/v2/images/{image_id}"
    return response


# By operation name: the response from what the runner returned (default: an empty 202).
_RESPONSES: dict[str, Callable[[ServerAction, Any], Response]] = {
    "rebuild": _rebuilt,
    "snapshot": _image_made,
    "confirm_resize": lambda view, _: Response(status=204),
    "console_output": lambda view, output: Response({"output": output}),
    # Nova with enable_instance_password off (Kumo puts no password into a guest, as for create and
    # rebuild): 200 and an empty body, no adminPass.
    "rescue": lambda view, _: Response({}),
    "backup": _backup_made,
}


def _action_body() -> dict:
    """The body as /openapi.json publishes it: one key, an operation's API name, whose value is
    described by the same argument schema the view validates it with."""
    def published(schema: dict | Versioned) -> dict:
        if isinstance(schema, Versioned):
            return {"anyOf": schema.schemas()}
        return schema

    actions = {
        api_name: published(_ARGUMENTS.get(operation.name, _NO_ARGUMENTS)[0])
        for api_name, operation in operations.BY_API_NAME.items()
        if operation.rule is not None
    }
    actions["os-getVNCConsole"] = remote_consoles.GET_VNC_CONSOLE
    actions["addSecurityGroup"] = _SECURITY_GROUP
    actions["removeSecurityGroup"] = _SECURITY_GROUP
    actions["evacuate"] = {"anyOf": evacuate.EVACUATE.schemas()}
    actions.update(network_actions.SCHEMAS)
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
        if key in ("addSecurityGroup", "removeSecurityGroup"):
            return self._security_group(server_id, key, args)
        if key in network_actions.RULES:
            return network_actions.act(self, server_id, key, args)
        if key == "evacuate":
            return evacuate.evacuate(self, self.authorized_server(server_id, evacuate.RULE), args)
        operation = operations.BY_API_NAME.get(key)
        since = _SINCE.get(operation.name, "2.1") if operation is not None else "2.1"
        if operation is None or operation.rule is None or not self.version.at_least(since):
            raise errors.BadRequest(f"There is no server action named {key!r}.")
        instance = self.authorized_server(server_id, operation.rule)
        schema, read = _ARGUMENTS.get(operation.name, _NO_ARGUMENTS)
        if operation.name == "migrate" and not self.version.at_least("2.56"):
            args = None  # Nova reads no migrate body below 2.56: a host named there is ignored
        validate(schema.at(self.version) if isinstance(schema, Versioned) else schema, args)
        if operation.name == "unshelve":
            args = args if self.version.at_least("2.77") else None
            if args and args.get("host"):
                self.authorize(UNSHELVE_TO_HOST)
        if operation.name == "rebuild":
            result = self._rebuild(instance, args)
        else:
            name, keywords = read(operation.name, args)
            result = operations.perform(self.ctx, instance, name, **keywords)
        respond = _RESPONSES.get(operation.name)
        return respond(self, result) if respond else Response(status=202)

    def _rebuild(self, instance: Instance, args: dict) -> Instance:
        """What a rebuild asks besides its image (validated for this version), as the rebuild's
        own arguments or as changes written with it."""
        if args.get("personality"):
            raise errors.BadRequest("Personality files are not supported: pass files with "
                                    "user_data (cloud-init) instead.")
        if args.get("trusted_image_certificates"):
            raise errors.BadRequest(servers.TRUSTED_CERTS_UNSUPPORTED)
        changes: dict[str, str | None] = {}
        for field, column in (("description", "description"), ("hostname", "hostname"),
                              ("key_name", "key_name"), ("accessIPv4", "access_ip_v4")):
            if field in args:
                changes[column] = args[field]
        if "accessIPv6" in args:
            changes["access_ip_v6"] = normalise_v6(args["accessIPv6"])
        if "user_data" in args:
            changes["user_data"] = args["user_data"]
        return servers.rebuild_server(
            self.ctx, instance, args["imageRef"], changes=changes, name=args.get("name"),
            metadata=args.get("metadata"), user_data=args.get("user_data"))

    def _security_group(self, server_id: str, key: str, args: Any) -> Response:
        adding = key == "addSecurityGroup"
        rule = ("compute:servers:add_security_group" if adding
                else "compute:servers:remove_security_group")
        instance = self.authorized_server(server_id, rule)
        validate(_SECURITY_GROUP, args)
        change = server_security_groups.add_group if adding else server_security_groups.remove_group
        change(self.ctx, instance, args["name"])
        return Response(status=202)


urlpatterns = [path("/servers/<str:server_id>/action", ServerAction.as_view())]
