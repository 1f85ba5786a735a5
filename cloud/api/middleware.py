"""Request ids on every response, OpenStack-shaped bodies for errors that happen outside views (an
unknown URL, a crash) on the API prefixes — never an HTML page or a traceback to an API client —
the refusal of URLs that carry a NUL, and the count and latency of every request for /metrics."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest

from cloud import metrics
from cloud.logcontext import request_id_var
from cloud.metrics.families import API_REQUEST_SECONDS

from .error_bodies import error_response, family_of

log = logging.getLogger(__name__)


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Paths outside the OpenStack APIs, by their first segment (anything else is "dashboard").
_OTHER_APIS = {"admin": "admin", "console": "console", "metadata": "metadata",
               "metrics": "metrics", "static": "static", "openapi.json": "openapi",
               "ec2": "ec2"}


class MetricsMiddleware:
    """Counts and times every request, labelled so the series stay few: the route pattern the URL
    matched (`compute/v2.1/servers/<str:server_id>`, never the path with its ids), "unmatched" for
    a URL no route took, and an unknown method as "other". Everything recorded while the request
    runs (claims, say) is handed to the store with it, together."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        with metrics.batch():
            response = self.get_response(request)
            match = getattr(request, "resolver_match", None)
            metrics.observe(
                API_REQUEST_SECONDS,
                time.perf_counter() - started,
                api_of(request.path),
                (match.route or match.view_name) if match is not None else "unmatched",
                request.method if request.method in _METHODS else "other",
                str(response.status_code),
            )
        return response


def api_of(path: str) -> str:
    family = family_of(path)
    if family is not None:
        return family
    return _OTHER_APIS.get(path.lstrip("/").split("/", 1)[0], "dashboard")


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = f"req-{uuid.uuid4()}"
        request.request_id = request_id
        token = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-OpenStack-Request-ID"] = request_id
        if family_of(request.path) == "compute":
            response["X-Compute-Request-ID"] = request_id
        return response


class ApiErrorMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        family = family_of(request.path)
        if family is None or response.status_code < 400:
            return response
        if response.get("Content-Type", "").startswith("application/json"):
            return response
        # Django answered on its own (no route, or a crash it turned into a page): reshape it.
        status = response.status_code
        if status == 404:
            message = "The resource could not be found."
        elif status == 405:
            message = "The method is not allowed for the requested URL."
        elif status >= 500:
            status, message = 500, "Unexpected API Error. Please report this at the operator."
        else:
            message = response.reason_phrase
        return error_response(family, status, message)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        family = family_of(request.path)
        if family is None:
            return None
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(
            family, 500, "Unexpected API Error. Please report this at the operator."
        )


class RefuseNulMiddleware:
    """A NUL (`%00`) in the path or the query string is refused with 400 before any view runs. No
    id, name or filter value can hold one, and PostgreSQL fails on a query that carries one (a
    500), so every lookup by path id and every list filter would otherwise need its own check."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "\x00" in request.path or any(
            "\x00" in key or any("\x00" in value for value in values)
            for key, values in request.GET.lists()
        ):
            message = "The URL holds a NUL character (%00), which no id or filter value may hold."
            family = family_of(request.path)
            if family is None:
                return HttpResponseBadRequest(message, content_type="text/plain")
            return error_response(family, 400, message)
        return self.get_response(request)
