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
from cloud.compute import consoles
from cloud.compute.models import Instance
from cloud.validation import validate

from ..base import ComputeView

RULE = "compute:servers:remote_consoles"

_REMOTE_CONSOLE = {
    "type": "object",
    "required": ["protocol", "type"],
    "properties": {
        "protocol": {"enum": list(consoles.PROTOCOLS)},
        "type": {"enum": list(consoles.TYPES)},
    },
    "additionalProperties": False,
}
# Nova's legacy action takes {"type": "novnc" | "xvpvnc"}.
GET_VNC_CONSOLE = {
    "type": "object",
    "required": ["type"],
    "properties": {"type": {"enum": ["novnc", "xvpvnc"]}},
    "additionalProperties": False,
}


class RemoteConsoles(ComputeView):
    body_schemas = {"POST": {
        "type": "object",
        "required": ["remote_console"],
        "properties": {"remote_console": _REMOTE_CONSOLE},
        "additionalProperties": False,
    }}

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


urlpatterns = [path("/servers/<str:server_id>/remote-consoles", RemoteConsoles.as_view())]
