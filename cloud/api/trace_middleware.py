"""A span for every web request when tracing is on (cloud/tracing.py): the root of a boot's trace,
under which the scheduler, agent and conductor spans hang. It runs just inside RequestIdMiddleware,
so the trace takes the request id's UUID as its id. It also names the server a request is about
in the request's log lines (cloud/logcontext.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse

from cloud import tracing
from cloud.logcontext import instance_var

# The URL arguments that name a server: the API's and the dashboard's.
INSTANCE_KWARGS = ("server_id", "instance_id")


class TraceMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response
        # Each web worker process starts its own exporter, after the server forked it.
        if tracing.setup("kumo-web"):
            tracing.install_celery_hooks()

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # Worker threads serve one request after another: what process_view sets ends here.
        token = instance_var.set("")
        try:
            if not tracing.enabled():
                return self.get_response(request)
            return self._traced(request)
        finally:
            instance_var.reset(token)

    def process_view(self, request: HttpRequest, view: Any, args: Any,
                     kwargs: dict[str, Any]) -> None:
        for name in INSTANCE_KWARGS:
            if isinstance(kwargs.get(name), str):
                instance_var.set(kwargs[name])
                break

    def _traced(self, request: HttpRequest) -> HttpResponse:
        attributes = {"http.request.method": request.method or "", "url.path": request.path,
                      "kumo.request_id": getattr(request, "request_id", "")}
        with tracing.server_span(f"{request.method} {request.path}", attributes) as span:
            response = self.get_response(request)
            if span is not None:
                match = getattr(request, "resolver_match", None)
                if match is not None and match.route:
                    # The route, not the path: one name for every server's GET.
                    span.update_name(f"{request.method} /{match.route}")
                span.set_attribute("http.response.status_code", response.status_code)
        return response
