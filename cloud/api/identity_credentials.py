"""Keystone v3 secrets for automation: application credentials
(cloud.identity.application_credentials), credentials and their EC2 access/secret pairs
(cloud.identity.credentials). Each user manages their own; an admin may see and remove
anyone's. A secret leaves only in the answers its owner (or an admin) asks for."""

from __future__ import annotations

from datetime import UTC, datetime

from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response

from cloud import errors
from cloud.identity import application_credentials as app_credentials
from cloud.identity import credentials
from cloud.identity.models import ApplicationCredential, Credential

from .identity_admin import NULLABLE_TEXT, IdentityAdminView, envelope, pick

_ROLE_REF = {"type": "object", "properties": {"id": {"type": "string"},
                                              "name": {"type": "string"}}}
_APP_CREDENTIAL_CREATE = envelope("application_credential", {
    "name": {"type": "string", "minLength": 1, "maxLength": 255},
    "description": NULLABLE_TEXT,
    "secret": {"type": ["string", "null"], "minLength": 1, "maxLength": 4096},
    "expires_at": {"type": ["string", "null"]},
    "roles": {"type": "array", "items": _ROLE_REF},
    "unrestricted": {"type": "boolean"},
    "access_rules": {"type": "array"},
}, ("name",))
_CREDENTIAL_FIELDS = {
    "blob": {"type": "string", "minLength": 1, "maxLength": 65535},
    "type": {"type": "string", "minLength": 1, "maxLength": 255},
    "user_id": {"type": "string", "minLength": 1, "maxLength": 64},
    "project_id": {"type": ["string", "null"], "maxLength": 64},
}
_CREDENTIAL_CREATE = envelope("credential", _CREDENTIAL_FIELDS, ("blob", "type", "user_id"))
_CREDENTIAL_UPDATE = envelope("credential", _CREDENTIAL_FIELDS)
_EC2_CREATE = {"type": "object", "required": ["tenant_id"],
               "properties": {"tenant_id": {"type": "string", "minLength": 1}}}


def _expiry(when: datetime | None) -> str | None:
    # Keystone's spelling: UTC, microseconds, no zone suffix.
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") if when else None


class CredentialsView(IdentityAdminView):
    def app_credential_body(self, credential: ApplicationCredential) -> dict:
        return {
            "id": credential.id,
            "name": credential.name,
            "description": credential.description,
            "user_id": credential.user_id,
            "project_id": credential.project_id,
            "expires_at": _expiry(credential.expires_at),
            "unrestricted": credential.unrestricted,
            "roles": [{"id": r.id, "name": r.name, "domain_id": None}
                      for r in credential.roles.order_by("name")],
            "access_rules": [],
            "links": {"self": self.v3_url("users", credential.user_id, "application_credentials",
                                          credential.id)},
        }

    def credential_body(self, credential: Credential) -> dict:
        return {
            "id": credential.id,
            "type": credential.type,
            "user_id": credential.user_id,
            "project_id": credential.project_id,
            "blob": credentials.blob_of(credential),
            "links": {"self": self.v3_url("credentials", credential.id)},
        }

    def ec2_body(self, pair: credentials.Ec2Pair) -> dict:
        return {
            "user_id": pair.user_id,
            "tenant_id": pair.project_id,
            "access": pair.access,
            "secret": pair.secret,
            "trust_id": None,
            "links": {"self": self.v3_url("users", pair.user_id, "credentials", "OS-EC2",
                                          pair.access)},
        }


class ApplicationCredentialList(CredentialsView):
    body_schemas = {"POST": _APP_CREDENTIAL_CREATE}
    query_params = {"GET": ("name",)}

    def get(self, request: Request, user_id: str) -> Response:
        self.authorize("identity:application_credentials:list")
        found = app_credentials.list_credentials(self.ctx, user_id, name=self.param("name"))
        return self.list_response("application_credentials",
                                  [self.app_credential_body(c) for c in found])

    def post(self, request: Request, user_id: str) -> Response:
        self.authorize("identity:application_credentials:create")
        data = self.valid_body("application_credential")
        if data.get("access_rules"):
            raise errors.BadRequest("Access rules are not supported: an application credential "
                                    "holds its roles on its project for every API.")
        credential, secret = app_credentials.create(
            self.ctx, user_id,
            **pick(data, "name", "description", "secret", "expires_at", "roles", "unrestricted"),
        )
        body = self.app_credential_body(credential)
        body["secret"] = secret
        return Response({"application_credential": body}, status=201)


class ApplicationCredentialDetail(CredentialsView):
    def get(self, request: Request, user_id: str, credential_id: str) -> Response:
        self.authorize("identity:application_credentials:show")
        credential = app_credentials.get_credential(self.ctx, user_id, credential_id)
        return Response({"application_credential": self.app_credential_body(credential)})

    def delete(self, request: Request, user_id: str, credential_id: str) -> Response:
        self.authorize("identity:application_credentials:delete")
        app_credentials.delete_credential(self.ctx, user_id, credential_id)
        return Response(status=204)


class CredentialList(CredentialsView):
    body_schemas = {"POST": _CREDENTIAL_CREATE}
    query_params = {"GET": ("user_id", "type")}

    def get(self, request: Request) -> Response:
        self.authorize("identity:credentials:list")
        found = credentials.list_credentials(self.ctx, user_id=self.param("user_id"),
                                             type=self.param("type"))
        return self.list_response("credentials", [self.credential_body(c) for c in found])

    def post(self, request: Request) -> Response:
        self.authorize("identity:credentials:create")
        data = self.valid_body("credential")
        credential = credentials.create(
            self.ctx, **pick(data, "user_id", "type", "blob", "project_id")
        )
        return Response({"credential": self.credential_body(credential)}, status=201)


class CredentialDetail(CredentialsView):
    body_schemas = {"PATCH": _CREDENTIAL_UPDATE}

    def get(self, request: Request, credential_id: str) -> Response:
        self.authorize("identity:credentials:show")
        credential = credentials.get_credential(self.ctx, credential_id)
        return Response({"credential": self.credential_body(credential)})

    def patch(self, request: Request, credential_id: str) -> Response:
        self.authorize("identity:credentials:update")
        data = self.valid_body("credential")
        credential = credentials.update(self.ctx, credential_id, data)
        return Response({"credential": self.credential_body(credential)})

    def delete(self, request: Request, credential_id: str) -> Response:
        self.authorize("identity:credentials:delete")
        credentials.delete(self.ctx, credential_id)
        return Response(status=204)


class Ec2CredentialList(CredentialsView):
    """`openstack ec2 credentials create/list` (python-keystoneclient's OS-EC2 calls)."""

    body_schemas = {"POST": _EC2_CREATE}

    def get(self, request: Request, user_id: str) -> Response:
        self.authorize("identity:ec2_credentials:list")
        pairs = credentials.list_ec2(self.ctx, user_id)
        return self.list_response("credentials", [self.ec2_body(p) for p in pairs])

    def post(self, request: Request, user_id: str) -> Response:
        self.authorize("identity:ec2_credentials:create")
        project_id = self.valid_body()["tenant_id"]
        pair = credentials.create_ec2(self.ctx, user_id, project_id)
        return Response({"credential": self.ec2_body(pair)}, status=201)


class Ec2CredentialDetail(CredentialsView):
    def get(self, request: Request, user_id: str, access: str) -> Response:
        self.authorize("identity:ec2_credentials:show")
        return Response({"credential": self.ec2_body(credentials.get_ec2(self.ctx, user_id,
                                                                         access))})

    def delete(self, request: Request, user_id: str, access: str) -> Response:
        self.authorize("identity:ec2_credentials:delete")
        credentials.delete_ec2(self.ctx, user_id, access)
        return Response(status=204)


# Paths relative to /identity, joined into cloud/api/urls.py's identity_patterns.
urlpatterns = [
    path("/v3/users/<str:user_id>/application_credentials", ApplicationCredentialList.as_view()),
    path(
        "/v3/users/<str:user_id>/application_credentials/<str:credential_id>",
        ApplicationCredentialDetail.as_view(),
    ),
    path("/v3/credentials", CredentialList.as_view()),
    path("/v3/credentials/<str:credential_id>", CredentialDetail.as_view()),
    path("/v3/users/<str:user_id>/credentials/OS-EC2", Ec2CredentialList.as_view()),
    path("/v3/users/<str:user_id>/credentials/OS-EC2/<str:access>", Ec2CredentialDetail.as_view()),
]
