"""A span for every web request when tracing is on (cloud/tracing.py): the root of a boot's trace,
under which the scheduler, agent and conductor spans hang. It runs just inside RequestIdMiddleware,
so the trace takes the request id's UUID as its id."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from cloud import tracing


class TraceMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response
        # Each web worker process starts its own exporter, after the server forked it.
        if tracing.setup("kumo-web"):
            tracing.install_celery_hooks()

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not tracing.enabled():
            return self.get_response(request)
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
