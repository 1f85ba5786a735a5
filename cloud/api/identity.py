"""Keystone v3 subset: version discovery, and tokens got with a password, another token or an
application credential; the catalog of a token."""

from __future__ import annotations

from datetime import UTC

from rest_framework.request import Request
from rest_framework.response import Response

from cloud import errors
from cloud.api import error_bodies
from cloud.identity import catalog, tokens

from .base import IdentityView, PublicView

V3_UPDATED = "2020-04-07T00:00:00Z"


def _iso(dt) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"


class IdentityPublicView(PublicView):
    family = error_bodies.IDENTITY

    def version_doc(self) -> dict:
        return {
            "id": "v3.14",
            "status": "stable",
            "updated": V3_UPDATED,
            "links": [{"rel": "self", "href": f"{self.base_url()}/identity/v3/"}],
            "media-types": [
                {"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}
            ],
        }


class IdentityRoot(IdentityPublicView):
    def get(self, request: Request) -> Response:
        return Response({"versions": {"values": [self.version_doc()]}}, status=300)


class IdentityV3(IdentityPublicView):
    def get(self, request: Request) -> Response:
        return Response({"version": self.version_doc()})


_REF = {
    "type": "object",
    "properties": {"id": {"type": "string"}, "name": {"type": "string"}},
}
_AUTH_SCHEMA = {
    "type": "object",
    "required": ["auth"],
    "properties": {
        "auth": {
            "type": "object",
            "required": ["identity"],
            "properties": {
                "identity": {
                    "type": "object",
                    "required": ["methods"],
                    "properties": {
                        "methods": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                        "password": {
                            "type": "object",
                            "required": ["user"],
                            "properties": {
                                "user": {
                                    "type": "object",
                                    "required": ["password"],
                                    "properties": {
                                        "id": {"type": "string"},
                                        "name": {"type": "string"},
                                        "password": {"type": "string"},
                                        "domain": _REF,
                                    },
                                }
                            },
                        },
                        "token": {
                            "type": "object",
                            "required": ["id"],
                            "properties": {"id": {"type": "string"}},
                        },
                        "application_credential": {
                            "type": "object",
                            "required": ["secret"],
                            "properties": {
                                "id": {"type": "string"},
                                "name": {"type": "string"},
                                "secret": {"type": "string"},
                                "user": {
                                    "type": "object",
                                    "properties": {
                                        "id": {"type": "string"},
                                        "name": {"type": "string"},
                                        "domain": _REF,
                                    },
                                },
                            },
                        },
                    },
                },
                "scope": {
                    "type": ["object", "string"],
                    "properties": {
                        "project": {
                            "type": "object",
                            "properties": {
                                "id": {"type": "string"},
                                "name": {"type": "string"},
                                "domain": _REF,
                            },
                        }
                    },
                },
            },
        }
    },
}


class AuthTokens(IdentityView):
    """POST issues a token; GET/HEAD validate X-Subject-Token; DELETE revokes it."""

    body_schemas = {"POST": _AUTH_SCHEMA}
    header_params = {"GET": ("X-Subject-Token",), "DELETE": ("X-Subject-Token",)}
    public_methods = ("POST",)  # the token request itself

    def post(self, request: Request) -> Response:
        auth = self.valid_body("auth")
        identity = auth["identity"]
        methods = identity["methods"]
        scope = auth.get("scope")
        credential = None
        not_after = None
        try:
            if "password" in methods and "password" in identity:
                user_ref = identity["password"]["user"]
                if not user_ref.get("id") and not user_ref.get("name"):
                    raise errors.BadRequest("Either user id or user name is required.")
                user = tokens.authenticate_password(
                    user_id=user_ref.get("id"),
                    user_name=user_ref.get("name"),
                    password=user_ref["password"],
                )
            elif "token" in methods and "token" in identity:
                old = tokens.lookup(identity["token"]["id"])
                if old is None:
                    raise tokens.AuthenticationError("The token is not valid.")
                user = old.user
                # A token got with an application credential keeps its limits when renewed.
                credential = old.application_credential
                # And every token its expiry, as Keystone's: proving who one is again cannot be
                # put off forever by trading tokens.
                not_after = old.expires_at
            elif "application_credential" in methods and "application_credential" in identity:
                if scope:
                    # Its project is the credential's own; Keystone refuses a scope, even that.
                    raise tokens.AuthenticationError(
                        "Application credentials cannot request a scope.")
                ref = identity["application_credential"]
                owner = ref.get("user") or {}
                credential = tokens.authenticate_application_credential(
                    credential_id=ref.get("id"), name=ref.get("name"),
                    user_id=owner.get("id"), user_name=owner.get("name"), secret=ref["secret"],
                )
                user = credential.user
            else:
                raise errors.Unauthorized("Unsupported authentication method.")
            project = None
            if credential is not None:
                project = credential.project
                if isinstance(scope, dict) and "project" in scope:
                    ref = scope["project"]
                    if project.id != ref.get("id") and project.name != ref.get("name"):
                        raise tokens.AuthenticationError(
                            "A token got with an application credential cannot be rescoped.")
            elif isinstance(scope, dict) and "project" in scope:
                ref = scope["project"]
                project = tokens.find_project(project_id=ref.get("id"), project_name=ref.get("name"))
                if project is None:
                    raise errors.Unauthorized("The project could not be found or is not accessible.")
            elif scope is None and user.default_project_id:
                project = user.default_project
            issued = tokens.issue(user, project, methods, application_credential=credential,
                                   not_after=not_after)
        except tokens.AuthenticationError as exc:
            raise errors.Unauthorized(str(exc)) from None
        response = Response({"token": self.token_body(issued.record, issued.roles)}, status=201)
        response["X-Subject-Token"] = issued.token
        return response

    def get(self, request: Request) -> Response:
        record = self._subject()
        roles = tokens.roles_of(record.user, record.project, record.application_credential)
        response = Response({"token": self.token_body(record, roles)})
        response["X-Subject-Token"] = request.META["HTTP_X_SUBJECT_TOKEN"]
        return response

    def head(self, request: Request) -> Response:
        self._subject()
        return Response(status=200)

    def delete(self, request: Request) -> Response:
        self._subject()
        tokens.revoke(request.META["HTTP_X_SUBJECT_TOKEN"])
        return Response(status=204)

    def _subject(self):
        subject = self.request.META.get("HTTP_X_SUBJECT_TOKEN")
        record = tokens.lookup(subject) if subject else None
        if record is None:
            raise errors.NotFound("Could not find token.")
        if record.user_id != self.ctx.user_id and not self.ctx.is_admin:
            raise errors.Forbidden("You are not authorized to validate this token.")
        return record

    def token_body(self, record, roles: list[tuple[str, str]]) -> dict:
        user = record.user
        body = {
            "methods": record.methods,
            "audit_ids": [record.audit_id],
            "expires_at": _iso(record.expires_at),
            "issued_at": _iso(record.issued_at),
            "user": {
                "id": user.id,
                "name": user.name,
                "domain": {"id": "default", "name": "Default"},
                "password_expires_at": None,
            },
            "is_domain": False,
        }
        if record.project is not None:
            body["project"] = {
                "id": record.project.id,
                "name": record.project.name,
                "domain": {"id": "default", "name": "Default"},
            }
            body["roles"] = [{"id": rid, "name": name} for rid, name in roles]
            body["catalog"] = catalog.catalog(self.base_url(), str(record.project.id))
        credential = record.application_credential
        if credential is not None:
            body["application_credential"] = {
                "id": credential.id,
                "name": credential.name,
                "restricted": not credential.unrestricted,
            }
        return body


class AuthCatalog(IdentityView):
    """The catalog of the caller's token (what `openstack catalog list` shows)."""

    def get(self, request: Request) -> Response:
        if self.ctx.project_id is None:
            raise errors.Forbidden("An unscoped token has no catalog.")
        return Response({
            "catalog": catalog.catalog(self.base_url(), self.ctx.project_id),
            "links": {"self": f"{self.base_url()}/identity/v3/auth/catalog",
                      "previous": None, "next": None},
        })
