"""Keystone's credentials (/v3/credentials) and the EC2 access/secret pairs made through them
(/v3/users/{id}/credentials/OS-EC2), kept for an EC2 API to verify request signatures with.

A signature is an HMAC keyed with the secret, so the secret itself must be kept, not a hash of
it: the blob is stored encrypted (Fernet, with KUMO_CREDENTIAL_KEY, or a key derived from
SECRET_KEY when that is unset) and decrypted only to answer its owner or an admin, or to check a
signature (`ec2_secret`). Nothing here logs a blob.

A user manages their own credentials; an admin anyone's. An EC2 credential names a project the
user holds a role on; its id is the SHA-256 of its access key, as in Keystone.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from cloud import errors

from . import assignments
from .accounts import get_user
from .context import RequestContext
from .models import Credential, Project, User

if TYPE_CHECKING:
    from cryptography.fernet import Fernet

EC2 = "ec2"


def _fernet() -> Fernet:
    # Imported on first use: cryptography's Rust bindings cost ~7 MiB in every process that
    # imports this module (the web, through the EC2 API), for the few requests that touch a
    # credential.
    from cryptography.fernet import Fernet

    key = settings.KUMO_CREDENTIAL_KEY
    if not key:
        digest = hashlib.sha256(b"kumo credentials\0" + settings.SECRET_KEY.encode()).digest()
        key = base64.urlsafe_b64encode(digest).decode()
    try:
        return Fernet(key)
    except (ValueError, TypeError):
        # An operator's typo: every credential is unusable until it is fixed, and says why.
        raise errors.ServiceUnavailable(
            "KUMO_CREDENTIAL_KEY is not a Fernet key (32 bytes, URL-safe base64); the credential "
            "key must be fixed before credentials can be used."
        ) from None


def _seal(blob: str) -> str:
    return _fernet().encrypt(blob.encode()).decode()


def blob_of(credential: Credential) -> str:
    """The credential's blob, in clear; for its owner or an admin, or a signature check."""
    from cryptography.fernet import InvalidToken

    try:
        return _fernet().decrypt(credential.encrypted_blob.encode()).decode()
    except InvalidToken:
        raise errors.ServiceUnavailable(
            f"Credential {credential.pk} cannot be read: the credential key has changed."
        ) from None


def _own_or_admin(ctx: RequestContext, user_id: str) -> None:
    if user_id != ctx.user_id and not ctx.is_admin:
        raise errors.Forbidden("You are not authorized to manage another user's credentials.")


def _ec2_blob(blob: str) -> dict[str, Any]:
    try:
        data = json.loads(blob)
    except ValueError:
        raise errors.BadRequest("The blob of an ec2 credential must be JSON.") from None
    if not isinstance(data, dict) or not isinstance(data.get("access"), str) \
            or not data["access"] or not isinstance(data.get("secret"), str) or not data["secret"]:
        raise errors.BadRequest("The blob of an ec2 credential needs 'access' and 'secret'.")
    return data


def _ec2_id(access: str) -> str:
    return hashlib.sha256(access.encode()).hexdigest()


def _project_of(ctx: RequestContext, user_id: str, project_id: str | None) -> Project | None:
    if project_id is None:
        return None
    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        raise errors.BadRequest(f"Project {project_id} does not exist.")
    if not ctx.is_admin and not assignments.roles_of(user_id, project.id):
        raise errors.Forbidden(f"User {user_id} has no role on project {project_id}.")
    return project


def _refuse_scoped_escalation(ctx: RequestContext, project_id: str | None) -> None:
    """A token got with an application credential must not mint a credential that reaches
    further than it does. Keystone lets it, and binds the credential to the application
    credential (its EC2 tokens then carry the same limits); Kumo has no EC2 authentication to
    carry such a binding yet, so a restricted one may make none, and an unrestricted one only
    for its own project."""
    if ctx.restricted:
        raise errors.Forbidden("A token from a restricted application credential cannot make "
                               "credentials.")
    if ctx.application_credential_id and project_id != ctx.project_id:
        raise errors.Forbidden("A token from an application credential can make credentials "
                               "for its own project only.")


def create(
    ctx: RequestContext, *, user_id: str, type: str, blob: str, project_id: str | None = None
) -> Credential:
    _own_or_admin(ctx, user_id)
    _refuse_scoped_escalation(ctx, project_id)
    user = get_user(user_id)
    credential_id = uuid.uuid4().hex
    if type == EC2:
        if project_id is None:
            raise errors.BadRequest("An ec2 credential needs a project_id.")
        credential_id = _ec2_id(_ec2_blob(blob)["access"])
    project = _project_of(ctx, user_id, project_id)
    try:
        with transaction.atomic():
            return Credential.objects.create(
                id=credential_id, user=user, project=project, type=type,
                encrypted_blob=_seal(blob),
            )
    except IntegrityError:
        raise errors.Conflict(f"A credential with id {credential_id} already exists.") from None


def list_credentials(
    ctx: RequestContext, *, user_id: str | None = None, type: str | None = None
) -> QuerySet[Credential]:
    """Every credential an admin asks for; anyone else's own only, whatever they filter on."""
    credentials = Credential.objects.all()
    if not ctx.is_admin:
        credentials = credentials.filter(user_id=ctx.user_id)
    if user_id is not None:
        credentials = credentials.filter(user_id=user_id)
    if type is not None:
        credentials = credentials.filter(type=type)
    return credentials.order_by("created_at", "id")


def get_credential(ctx: RequestContext, credential_id: str) -> Credential:
    credential = Credential.objects.filter(pk=credential_id).first()
    # Someone else's credential is as missing as one that does not exist.
    if credential is None or (credential.user_id != ctx.user_id and not ctx.is_admin):
        raise errors.NotFound(f"Could not find credential: {credential_id}.")
    return credential


def update(ctx: RequestContext, credential_id: str, changes: Mapping[str, Any]) -> Credential:
    credential = get_credential(ctx, credential_id)
    type_ = changes.get("type", credential.type)
    blob = changes.get("blob", blob_of(credential))
    project_id = changes.get("project_id", credential.project_id)
    if changes.get("user_id", credential.user_id) != credential.user_id:
        raise errors.BadRequest("A credential cannot move to another user.")
    if type_ == EC2:
        if project_id is None:
            raise errors.BadRequest("An ec2 credential needs a project_id.")
        if _ec2_id(_ec2_blob(blob)["access"]) != credential.pk:
            raise errors.BadRequest("The access key of an ec2 credential cannot change.")
    credential.project = _project_of(ctx, credential.user_id, project_id)
    credential.type = type_
    credential.encrypted_blob = _seal(blob)
    credential.save()
    return credential


def delete(ctx: RequestContext, credential_id: str) -> None:
    get_credential(ctx, credential_id).delete()


# --- OS-EC2: the same credentials, by user and access key


@dataclass(frozen=True)
class Ec2Pair:
    user_id: str
    project_id: str | None
    access: str
    # Out of the repr: a pair in a log line or a traceback's locals must not carry the secret.
    secret: str = field(repr=False)


def _pair(credential: Credential) -> Ec2Pair:
    blob = _ec2_blob(blob_of(credential))
    return Ec2Pair(credential.user_id, credential.project_id, blob["access"], blob["secret"])


def create_ec2(ctx: RequestContext, user_id: str, project_id: str) -> Ec2Pair:
    """A new access/secret pair of the user on the project (both random)."""
    blob = json.dumps({"access": uuid.uuid4().hex, "secret": secrets.token_hex(16)})
    return _pair(create(ctx, user_id=user_id, type=EC2, blob=blob, project_id=project_id))


def list_ec2(ctx: RequestContext, user_id: str) -> list[Ec2Pair]:
    _own_or_admin(ctx, user_id)
    get_user(user_id)
    found = Credential.objects.filter(user_id=user_id, type=EC2).order_by("created_at", "id")
    return [_pair(c) for c in found]


def _ec2_credential(ctx: RequestContext, user_id: str, access: str) -> Credential:
    _own_or_admin(ctx, user_id)
    credential = Credential.objects.filter(
        pk=_ec2_id(access), user_id=user_id, type=EC2
    ).first()
    if credential is None:
        raise errors.NotFound(f"Could not find credential: {access}.")
    return credential


def get_ec2(ctx: RequestContext, user_id: str, access: str) -> Ec2Pair:
    return _pair(_ec2_credential(ctx, user_id, access))


def delete_ec2(ctx: RequestContext, user_id: str, access: str) -> None:
    _ec2_credential(ctx, user_id, access).delete()


def ec2_secret(access: str) -> Ec2Pair | None:
    """The pair an EC2 request names by its access key, for checking its signature; None when
    there is none."""
    credential = Credential.objects.filter(pk=_ec2_id(access), type=EC2).first()
    return _pair(credential) if credential is not None else None


def ec2_context(pair: Ec2Pair, request_id: str = "-") -> RequestContext | None:
    """Who a request signed with `pair` speaks for: the user on the credential's project with the
    roles they hold there now, as a token of theirs would. None when the user or project is
    disabled or gone, or no role is left (the credential then opens nothing)."""
    if pair.project_id is None:
        return None
    project = Project.objects.filter(pk=pair.project_id, enabled=True).first()
    user = User.objects.filter(pk=pair.user_id).first() if project is not None else None
    if project is None or user is None or not user.enabled:
        return None
    roles = tuple(name for _, name in assignments.roles_of(user.id, project.id))
    if not roles:
        return None
    return RequestContext(user_id=user.id, user_name=user.name, project_id=project.id,
                          project_name=project.name, roles=roles, request_id=request_id)
