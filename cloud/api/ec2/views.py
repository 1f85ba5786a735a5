"""The EC2 endpoint: one URL (/ec2), the action named by the `Action` parameter, in a GET's query
or a POST's form body. Every refusal is EC2's XML error with its code; nothing reaches a client
as a 500 page, and no parameter (user data, a key) or signature is logged."""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from cloud import errors
from cloud.identity import policy
from cloud.identity.credentials import ec2_context

from . import render, signature
from .actions import ACTIONS
from .errors import Ec2Error, auth_failure, translate, unauthorized
from .params import Params
from .registry import Call

log = logging.getLogger(__name__)

XML = "text/xml;charset=UTF-8"
# A RunInstances with 16 KiB of base64 user data is about 22 KB; ImportKeyPair's key a few.
MAX_BODY = 1024 * 1024


def _pairs(request: HttpRequest, body: bytes) -> tuple[list[tuple[str, str]],
                                                         list[tuple[str, str]]]:
    try:
        query = parse_qsl(request.META.get("QUERY_STRING", ""), keep_blank_values=True,
                          strict_parsing=False, errors="strict")
        form: list[tuple[str, str]] = []
        if request.method == "POST" and body:
            form = parse_qsl(body.decode("utf-8"), keep_blank_values=True, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise Ec2Error("InvalidParameterValue",
                       "The request's parameters are not UTF-8 form fields.") from None
    for key, value in (*query, *form):
        if "\x00" in key or "\x00" in value:
            raise Ec2Error("InvalidParameterValue",
                           f"Parameter {key.replace(chr(0), '')} holds a NUL character.")
    return query, form


def _base_url(request: HttpRequest) -> str:
    if settings.KUMO_PUBLIC_URL:
        return str(settings.KUMO_PUBLIC_URL).rstrip("/")
    return f"{request.scheme}://{request.get_host()}"


def _handle(request: HttpRequest, request_id: str) -> tuple[str, bytes]:
    if request.method not in ("GET", "POST"):
        raise Ec2Error("InvalidAction", "Send EC2 requests as GET or POST.")
    body = request.body
    if len(body) > MAX_BODY:
        raise Ec2Error("InvalidParameterValue", "The request is larger than 1 MiB.")
    query, form = _pairs(request, body)
    pairs = [*query, *form]
    signed = signature.verify(request, query, body, pairs)
    ctx = ec2_context(signed.pair, request_id)
    if ctx is None:
        raise auth_failure("The access key's user or project is disabled, or holds no role "
                           "on the project any more.")
    params = Params.parse(pairs)
    name = params.get("Action")
    if not name:
        raise Ec2Error("MissingAction", "The request must contain the parameter Action.")
    action = ACTIONS.get(name)
    if action is None:
        raise Ec2Error("InvalidAction",
                       f"The action {name} is not valid for this web service.")
    if action.rule is not None and not policy.allowed(ctx, action.rule):
        raise unauthorized()
    # A change that carries a ClientToken is idempotent by EC2's own rule (the handler answers a
    # repeat with what the first made), so a client's retry, signed again in the same second and
    # so with the same signature, reaches it; any other change is accepted once.
    if action.changes and not params.get("ClientToken") and not signature.first_use(signed):
        raise auth_failure("This request has already been used: a signed request that changes "
                           "something is accepted once.")
    try:
        answer = action.handler(Call(ctx, params, request_id, _base_url(request)))
    except errors.KumoError as exc:
        raise translate(exc) from exc
    log.info("ec2 %s by user %s on project %s", name, ctx.user_id, ctx.project_id)
    return name, render.answer(name, request_id, answer)


@csrf_exempt
def ec2_endpoint(request: HttpRequest) -> HttpResponse:
    request_id = getattr(request, "request_id", "-")
    try:
        _, content = _handle(request, request_id)
        return HttpResponse(content, content_type=XML)
    except Ec2Error as exc:
        if exc.status >= 500:
            log.error("ec2 request %s failed: %s", request_id, exc.code)
        return HttpResponse(render.error(exc.code, exc.message, request_id),
                            status=exc.status, content_type=XML)
    except Exception:
        log.exception("ec2 request %s failed", request_id)
        return HttpResponse(render.error("InternalError", "An internal error has occurred.",
                                         request_id), status=500, content_type=XML)
