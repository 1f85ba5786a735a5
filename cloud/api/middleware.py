"""Request ids on every response, and OpenStack-shaped bodies for errors that happen outside views
(an unknown URL, a crash) on the API prefixes: never an HTML page or a traceback to an API client."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from cloud.logcontext import request_id_var

from .error_bodies import error_response, family_of

log = logging.getLogger(__name__)


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
