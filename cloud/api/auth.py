"""DRF authentication by Keystone token (`X-Auth-Token`)."""

from __future__ import annotations

from rest_framework import authentication, exceptions
from rest_framework.request import Request

from cloud.identity import tokens
from cloud.identity.context import RequestContext


class KeystoneTokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[object, RequestContext] | None:
        token = request.META.get("HTTP_X_AUTH_TOKEN")
        if not token:
            return None
        context = tokens.validate(token, request_id=getattr(request, "request_id", "-"))
        if context is None:
            raise exceptions.AuthenticationFailed("The request you have made requires authentication.")
        return (context, context)

    def authenticate_header(self, request: Request) -> str:
        return 'Keystone uri="/identity/v3"'
