"""/os-keypairs: create (import or generate), list, show, delete.

Shapes by microversion: 2.2 adds `type` (ssh|x509) and answers create with 201 and delete with 204
(200 and 202 before); 2.10 lets an admin act on another user's key pairs with `user_id`; 2.35 pages
the list with `limit`/`marker` and `keypairs_links`; 2.75 refuses unknown query parameters; 2.92
generates no more keys (public_key is required) and lets names hold "@" and ".".
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response

from cloud.compute import keypairs
from cloud.compute.models import KeyPair
from cloud.validation import name_schema

from ..base import ComputeView, Versioned
from ..microversion import APIVersion
from . import params
from .bodies import iso_micro


def _create_schema(extra: dict, name_chars: str = r"_\- a-zA-Z0-9",
                   required: tuple[str, ...] = ("name",)) -> dict:
    return {
        "type": "object",
        "required": ["keypair"],
        "properties": {
            "keypair": {
                "type": "object",
                "required": list(required),
                "properties": {
                    "name": {"allOf": [name_schema(), {"pattern": f"^[{name_chars}]+$"}]},
                    "public_key": {"type": "string"},
                    **extra,
                },
                "additionalProperties": False,
            }
        },
        "additionalProperties": False,
    }


_TYPE = {"type": {"type": "string", "enum": list(keypairs.TYPES)}}
_USER = {"user_id": {"type": "string", "minLength": 1}}
_CREATE_21 = _create_schema({})
_CREATE_22 = _create_schema(_TYPE)
_CREATE_210 = _create_schema({**_TYPE, **_USER})
_CREATE_292 = _create_schema({**_TYPE, **_USER}, name_chars=r"_\-@. a-zA-Z0-9",
                             required=("name", "public_key"))


def summary_body(keypair: KeyPair, version: APIVersion) -> dict:
    body = {
        "name": keypair.name,
        "public_key": keypair.public_key,
        "fingerprint": keypair.fingerprint,
    }
    if version.at_least("2.2"):
        body["type"] = keypair.type
    return body


def created_body(keypair: KeyPair, private_key: str | None, version: APIVersion) -> dict:
    body = {**summary_body(keypair, version), "user_id": keypair.user_id}
    if private_key is not None:
        body["private_key"] = private_key
    return body


def show_body(keypair: KeyPair, version: APIVersion) -> dict:
    # Nova's soft-delete columns are constant here: a deleted key pair is gone.
    return {
        **summary_body(keypair, version),
        "user_id": keypair.user_id,
        "id": keypair.id,
        "deleted": False,
        "created_at": iso_micro(keypair.created_at),
        "updated_at": iso_micro(keypair.updated_at),
        "deleted_at": None,
    }


class KeyPairView(ComputeView):
    def owner(self, requested: str | None) -> str:
        """Whose key pairs the request is about: the caller's unless an admin names another user
        (2.10+; older versions ignore `user_id`, as Nova does)."""
        if requested is None or not self.version.at_least("2.10") or requested == self.ctx.user_id:
            return self.ctx.user_id
        self.authorize("compute:keypairs:other_user")
        return requested


class KeyPairList(KeyPairView):
    body_schemas = {"POST": Versioned(("2.1", _CREATE_21), ("2.2", _CREATE_22),
                                      ("2.10", _CREATE_210), ("2.92", _CREATE_292))}
    query_params = {"GET": ("user_id", "limit", "marker")}
    strict_query_from = "2.75"

    def get(self, request: Request) -> Response:
        self.authorize("compute:keypairs:index")
        query = request.query_params
        user_id = self.owner(query.get("user_id"))
        paged = self.version.at_least("2.35")
        # Paging arrived with 2.35; a malformed limit is refused at any version all the same.
        limit = params.limit_param(query)
        limit, marker = (limit, query.get("marker")) if paged else (None, None)
        items = keypairs.list_keypairs(user_id, limit=limit, marker=marker)
        body: dict = {"keypairs": [{"keypair": summary_body(k, self.version)} for k in items]}
        if paged and limit and len(items) == limit:
            link_query = {"limit": limit, "marker": items[-1].name}
            if user_id != self.ctx.user_id:
                link_query["user_id"] = user_id
            href = f"{self.compute_url('os-keypairs')}?{urlencode(link_query)}"
            body["keypairs_links"] = [{"rel": "next", "href": href}]
        return Response(body)

    def post(self, request: Request) -> Response:
        self.authorize("compute:keypairs:create")
        spec = self.valid_body("keypair")
        keypair, private_key = keypairs.create_keypair(
            self.ctx,
            self.owner(spec.get("user_id")),
            spec["name"],
            public_key=spec.get("public_key"),
            key_type=spec.get("type", keypairs.SSH),
        )
        status = 201 if self.version.at_least("2.2") else 200
        return Response(
            {"keypair": created_body(keypair, private_key, self.version)}, status=status
        )


class KeyPairItem(KeyPairView):
    query_params = {"GET": ("user_id",), "DELETE": ("user_id",)}
    strict_query_from = "2.75"

    def get(self, request: Request, name: str) -> Response:
        self.authorize("compute:keypairs:show")
        keypair = keypairs.get_keypair(self.owner(request.query_params.get("user_id")), name)
        return Response({"keypair": show_body(keypair, self.version)})

    def delete(self, request: Request, name: str) -> Response:
        self.authorize("compute:keypairs:delete")
        keypairs.delete_keypair(self.owner(request.query_params.get("user_id")), name)
        return Response(status=204 if self.version.at_least("2.2") else 202)


urlpatterns = [
    path("/os-keypairs", KeyPairList.as_view()),
    path("/os-keypairs/<str:name>", KeyPairItem.as_view()),
]
