"""Adding compute hosts, Kumo's extension to the compute API (cloud/enrollment,
docs/adding-a-host.md).

    POST /os-host-tokens  {"host_token": {"host": "compute-7", "ttl": 3600}}    admin: 201 with
                          a one-time join token, shown this once
    POST /os-host-joins   {"join": {"token": "…", "host": "compute-7"}}         no Keystone token:
                          the join token is the authentication; 201 with the host's broker URL
                          (its own user and password) and signing secret

`python -m compute_agent join URL TOKEN` calls the second on the new machine. A token that is
unknown, expired or used is a 401 saying which; the answers carry secrets and are never cached.
Nova has no such calls; the shapes follow its conventions (a wrapped body, 201 for a creation).
"""

from __future__ import annotations

from django.conf import settings
from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response

from cloud.enrollment import host_credentials, join_tokens
from compute_agent import messages as msg

from ..base import ComputeView
from . import bodies

_HOST = {"type": "string", "minLength": 1, "maxLength": 63}

_ISSUE = {
    "type": "object",
    "required": ["host_token"],
    "properties": {"host_token": {
        "type": "object",
        "required": ["host"],
        "properties": {
            "host": _HOST,
            "ttl": {"type": "integer", "minimum": join_tokens.MIN_TTL,
                    "maximum": join_tokens.MAX_TTL},
        },
        "additionalProperties": False,
    }},
    "additionalProperties": False,
}

_JOIN = {
    "type": "object",
    "required": ["join"],
    "properties": {"join": {
        "type": "object",
        "required": ["token"],
        "properties": {
            "token": {"type": "string", "minLength": 1, "maxLength": 255},
            "host": _HOST,
        },
        "additionalProperties": False,
    }},
    "additionalProperties": False,
}


def _secret(response: Response) -> Response:
    response["Cache-Control"] = "no-store"
    return response


class HostTokenList(ComputeView):
    body_schemas = {"POST": _ISSUE}

    def post(self, request: Request) -> Response:
        self.authorize("compute:host_tokens:create")
        wanted = self.valid_body()["host_token"]
        issued = join_tokens.issue(wanted["host"], wanted.get("ttl"), issued_by=self.ctx.user_id)
        join_url = settings.KUMO_INTERNAL_URL.rstrip("/")
        return _secret(Response({"host_token": {
            "id": str(issued.record.uuid),
            "host": issued.record.host,
            "token": issued.token,
            "created_at": bodies.iso(issued.record.created_at),
            "expires_at": bodies.iso(issued.record.expires_at),
            "join_command": f"python -m compute_agent join {join_url} {issued.token}",
        }}, status=201))


class HostJoin(ComputeView):
    body_schemas = {"POST": _JOIN}
    public_methods = ("POST",)

    def post(self, request: Request) -> Response:
        wanted = self.valid_body()["join"]
        joined = host_credentials.join(wanted["token"], wanted.get("host"))
        return _secret(Response({"join": {
            "host": joined.host,
            "queue": msg.compute_queue(joined.host),
            "broker": joined.broker,
            "broker_url": joined.broker_url,
            "host_secret": joined.host_secret,
            "internal_url": joined.internal_url,
            "heartbeat_interval": joined.heartbeat_interval,
        }}, status=201))


urlpatterns = [
    path("/os-host-tokens", HostTokenList.as_view()),
    path("/os-host-joins", HostJoin.as_view()),
]
