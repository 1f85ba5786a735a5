"""The errors of cloud/errors.py in the OpenStack body shapes.

Each API family words the same error differently: Nova `{"itemNotFound": {"code", "message"}}`,
Keystone and Glance `{"error": {"code", "title", "message"}}`, Neutron `{"NeutronError": {…}}`.
The family is chosen by the URL prefix, so even a 404 for an unknown path or a crash deep in a
view answers in the shape the client reads.
"""

from __future__ import annotations

import logging
from http import HTTPStatus

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import Http404, JsonResponse
from rest_framework import exceptions as drf
from rest_framework.response import Response

from cloud.errors import BadRequest, KumoError, RequestTooLarge

log = logging.getLogger(__name__)

COMPUTE, IDENTITY, IMAGE, NETWORK = "compute", "identity", "image", "network"
# Cinder words its errors as Nova does ({"itemNotFound": {"code", "message"}}); quota is a 413.
VOLUME = "volume"
API_PREFIXES = {
    "/compute": COMPUTE,
    "/identity": IDENTITY,
    "/image": IMAGE,
    "/network": NETWORK,
    "/volume": VOLUME,
}

_COMPUTE_KEYS = {
    400: "badRequest",
    401: "unauthorized",
    403: "forbidden",
    404: "itemNotFound",
    405: "badMethod",
    409: "conflictingRequest",
    413: "overLimit",
    415: "badMediaType",
}

_NEUTRON_TYPES = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
}


def family_of(path: str) -> str | None:
    for prefix, family in API_PREFIXES.items():
        if path == prefix or path.startswith(prefix + "/"):
            return family
    return None


def error_body(
    family: str,
    status: int,
    message: str,
    compute_key: str | None = None,
    neutron_type: str | None = None,
) -> dict:
    title = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    if family in (COMPUTE, VOLUME):
        key = compute_key or _COMPUTE_KEYS.get(status, "computeFault")
        return {key: {"code": status, "message": message}}
    if family == NETWORK:
        kind = neutron_type or _NEUTRON_TYPES.get(status, "NeutronError")
        return {"NeutronError": {"type": kind, "message": message, "detail": ""}}
    return {"error": {"code": status, "title": title, "message": message}}


def error_response(family: str, status: int, message: str, **kw) -> JsonResponse:
    return JsonResponse(error_body(family, status, message, **kw), status=status)


def exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF's hook: every exception a view raises becomes an OpenStack-shaped body."""
    view = context.get("view")
    family = getattr(view, "family", COMPUTE)
    headers = {}
    exc = _refusal_of(exc)
    if isinstance(exc, KumoError):
        status, message = exc.status, exc.message
        body = error_body(family, status, message, exc.compute_key, exc.neutron_type)
    elif isinstance(exc, drf.APIException):
        status = exc.status_code
        if isinstance(exc, (drf.NotAuthenticated, drf.AuthenticationFailed)):
            status = 401
            message = (
                "The request you have made requires authentication."
                if isinstance(exc, drf.NotAuthenticated)
                else str(exc.detail)
            )
            headers["WWW-Authenticate"] = 'Keystone uri="/identity/v3"'
        elif isinstance(exc, drf.ParseError):
            message = "Malformed request body"
        elif isinstance(exc, drf.MethodNotAllowed):
            message = str(exc.detail)
        else:
            message = _flatten_detail(exc.detail)
        body = error_body(family, status, message)
    elif isinstance(exc, Http404):
        status = 404
        body = error_body(family, status, str(exc) or "The resource could not be found.")
    else:
        return None  # a crash: ApiErrorMiddleware logs it and answers 500 in the right shape
    return Response(body, status=status, headers=headers)


def _refusal_of(exc: Exception) -> Exception:
    """Django's own refusals of a request, raised while a view reads it, as the KumoErrors they
    are: a body over DATA_UPLOAD_MAX_MEMORY_SIZE is a 413, anything else suspicious a 400."""
    if isinstance(exc, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return RequestTooLarge(f"The request body is larger than the limit of {limit} bytes.")
    if isinstance(exc, SuspiciousOperation):
        return BadRequest(str(exc) or "The request was refused.")
    return exc


def _flatten_detail(detail) -> str:
    if isinstance(detail, list):
        return "; ".join(_flatten_detail(d) for d in detail)
    if isinstance(detail, dict):
        return "; ".join(f"{k}: {_flatten_detail(v)}" for k, v in detail.items())
    return str(detail)
