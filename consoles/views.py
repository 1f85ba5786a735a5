"""The console page (Kumo's own, around noVNC), its status answer, and noVNC's files.

The page never consumes the token: it only says whether connecting would work, so a page view (or
a link preview) does not burn a one-time link. The websocket (consoles/consumer.py) consumes it.
consoles/proxy.py serves the same page and files with the same functions.
"""

from __future__ import annotations

from typing import Any

from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET

from cloud.compute import consoles

from . import novnc

WS_PATH = "/console/ws"
STATUS_PATH = "/console/status"

# The token is in the page's URL: keep it out of caches and of Referer headers.
PRIVATE_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def page_context(token: str | None) -> dict[str, Any]:
    state = consoles.describe_token(token)
    return {
        "state": state.state,
        "message": state.message,
        "instance_name": state.instance_name,
        "novnc_prefix": novnc.URL_PREFIX,
        "novnc_installed": novnc.installed(),
        "ws_path": WS_PATH,
        "status_path": STATUS_PATH,
    }


def render_page(token: str | None) -> str:
    return render_to_string("consoles/console.html", page_context(token))


def status_body(token: str | None) -> dict[str, str]:
    state = consoles.describe_token(token)
    return {"state": state.state, "message": state.message, "instance_name": state.instance_name}


@require_GET
def console_page(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(render_page(request.GET.get("token")))
    for name, value in PRIVATE_HEADERS.items():
        response[name] = value
    return response


@require_GET
def console_status(request: HttpRequest) -> JsonResponse:
    response = JsonResponse(status_body(request.GET.get("token")))
    for name, value in PRIVATE_HEADERS.items():
        response[name] = value
    return response


@require_GET
def novnc_file(request: HttpRequest, path: str) -> FileResponse:
    found = novnc.resolve(path)
    if found is None:
        raise Http404("not a noVNC file")
    file, content_type = found
    response = FileResponse(open(file, "rb"), content_type=content_type)  # noqa: SIM115
    response["Cache-Control"] = "public, max-age=3600"
    return response
