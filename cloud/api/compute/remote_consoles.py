"""POST /servers/{id}/remote-consoles (2.6+): a console URL with a fresh one-time token.

The legacy form, the os-getVNCConsole server action (2.1–2.5), is answered by server_actions.py,
which calls get_vnc_console() below. Tokens and their rules: cloud/compute/consoles.py.
"""

from __future__ import annotations

from typing import Any

from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response

from cloud import errors
from cloud.compute import console_auth_tokens, consoles
from cloud.compute.models import Instance
from cloud.validation import validate

from ..base import ComputeView, Versioned

RULE = "compute:servers:remote_consoles"

def _remote_console(protocols: list[str], types: list[str]) -> dict:
    return {
        "type": "object",
        "required": ["remote_console"],
        "properties": {"remote_console": {
            "type": "object",
            "required": ["protocol", "type"],
            "properties": {"protocol": {"enum": protocols}, "type": {"enum": types}},
            "additionalProperties": False,
        }},
        "additionalProperties": False,
    }


# What a request may name, by microversion (2.8 mks/webmks, 2.99 spice-direct); anything but
# vnc/novnc is then refused by compute/consoles.py as a console type this cloud does not serve.
_PROTOCOLS = ["vnc", "spice", "rdp", "serial"]
_TYPES = ["novnc", "xvpvnc", "rdp-html5", "spice-html5", "serial"]
_REMOTE_CONSOLE = Versioned(
    ("2.6", _remote_console(_PROTOCOLS, _TYPES)),
    ("2.8", _remote_console([*_PROTOCOLS, "mks"], [*_TYPES, "webmks"])),
    ("2.99", _remote_console([*_PROTOCOLS, "mks"], [*_TYPES, "webmks", "spice-direct"])),
)
# Nova's legacy action takes {"type": "novnc" | "xvpvnc"}.
GET_VNC_CONSOLE = {
    "type": "object",
    "required": ["type"],
    "properties": {"type": {"enum": ["novnc", "xvpvnc"]}},
    "additionalProperties": False,
}


class RemoteConsoles(ComputeView):
    body_schemas = {"POST": _REMOTE_CONSOLE}

    def post(self, request: Request, server_id: str) -> Response:
        if not self.version.at_least("2.6"):
            raise errors.NotFound("The resource could not be found.")
        instance = self.authorized_server(server_id, RULE)
        args = self.valid_body("remote_console")
        url = consoles.create_console(
            self.ctx, instance, args["protocol"], args["type"], self.base_url()
        )
        return Response(
            {"remote_console": {"protocol": args["protocol"], "type": args["type"], "url": url}}
        )


def get_vnc_console(view: ComputeView, instance: Instance, args: Any) -> Response:
    """The os-getVNCConsole action: 200 {"console": {"type", "url"}}, up to 2.5 (then 404, as
    Nova: remote-consoles replaced it)."""
    if view.version.at_least("2.6"):
        raise errors.NotFound("The resource could not be found.")
    validate(GET_VNC_CONSOLE, args)
    url = consoles.create_console(view.ctx, instance, consoles.PROTOCOL_VNC, args["type"],
                                  view.base_url())
    return Response({"console": {"type": args["type"], "url": url}})


class ConsoleAuthToken(ComputeView):
    """GET /os-console-auth-tokens/{token} (admin): where a token connects. 400 below 2.31 (the
    API then served only rdp-html5 tokens, which no cloud issues any more); `tls_port` from 2.99
    for spice-direct tokens, which Kumo never issues. From 2.99 no query parameter is taken."""

    strict_query_from = "2.99"

    def get(self, request: Request, token: str) -> Response:
        if not self.version.at_least("2.31"):
            raise errors.BadRequest("Console auth tokens are shown from microversion 2.31.")
        self.authorize("compute:console_auth_tokens")
        info = console_auth_tokens.connect_info(token)
        return Response({"console": {"instance_uuid": info.instance_uuid, "host": info.host,
                                     "port": info.port, "internal_access_path": None}})


urlpatterns = [
    path("/servers/<str:server_id>/remote-consoles", RemoteConsoles.as_view()),
    path("/os-console-auth-tokens/<str:token>", ConsoleAuthToken.as_view()),
]
