"""Application credentials: a user's own secrets for automation, each logging in as that user on
the project of the token that made it, with some of the user's roles there.

- Only the user makes, lists and deletes their own (an admin may list and delete anyone's); the
  token must be scoped to a project, which the credential is then bound to.
- Its roles are those of the making token unless fewer are named; naming one the token does not
  carry is refused. A token got with it carries those of them the user still holds.
- The secret is generated (or given) once, shown once, and kept only as a password hash.
- Keystone's rule: a token got with a restricted application credential may not make or delete
  application credentials (nor trusts, which Kumo does not have), so a leaked secret cannot mint
  itself successors.
- Deleting it ends the tokens got with it.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from django.contrib.auth.hashers import make_password
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from cloud import errors

from .accounts import get_user
from .context import RequestContext
from .models import ApplicationCredential, Role


def _refuse_restricted(ctx: RequestContext, doing: str) -> None:
    if ctx.restricted:
        raise errors.Forbidden(
            f"A token from a restricted application credential cannot {doing} application "
            "credentials; make it with one that is unrestricted."
        )


def _own_or_admin(ctx: RequestContext, user_id: str) -> None:
    if user_id != ctx.user_id and not ctx.is_admin:
        raise errors.Forbidden("You are not authorized to manage another user's application "
                               "credentials.")


def parse_expiry(value: str | None) -> datetime | None:
    """An ISO 8601 time (UTC when it names no zone); None for never."""
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value)  # Python 3.11 reads a trailing Z too
    except (ValueError, TypeError):
        raise errors.BadRequest(
            f"Invalid expires_at {value!r}: expected an ISO 8601 time."
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _roles(ctx: RequestContext, wanted: Iterable[Mapping[str, Any]] | None) -> list[Role]:
    """The roles to delegate: every one of the token's, or those named, each of which the
    token must carry."""
    held = {role.name: role for role in Role.objects.filter(name__in=ctx.roles)}
    if not wanted:
        return list(held.values())
    chosen = []
    for ref in wanted:
        role = next((r for r in held.values()
                     if r.id == ref.get("id") or (ref.get("id") is None and r.name == ref.get("name"))),
                    None)
        if role is None:
            raise errors.Forbidden(f"You cannot delegate role {ref.get('id') or ref.get('name')}: "
                                   "your token does not carry it on this project.")
        chosen.append(role)
    return chosen


def create(
    ctx: RequestContext,
    user_id: str,
    *,
    name: str,
    description: str | None = None,
    secret: str | None = None,
    expires_at: str | None = None,
    roles: Iterable[Mapping[str, Any]] | None = None,
    unrestricted: bool = False,
) -> tuple[ApplicationCredential, str]:
    """A new application credential of the caller, and its secret (shown this once)."""
    if user_id != ctx.user_id:
        raise errors.Forbidden("Application credentials are made by their own user only.")
    _refuse_restricted(ctx, "make")
    project_id = ctx.scope
    expiry = parse_expiry(expires_at)
    if expiry is not None and expiry <= timezone.now():
        raise errors.BadRequest("expires_at must be in the future.")
    delegated = _roles(ctx, roles)
    secret = secret or secrets.token_urlsafe(48)
    try:
        with transaction.atomic():
            credential = ApplicationCredential.objects.create(
                user=get_user(user_id), project_id=project_id, name=name,
                description=description or "", secret_hash=make_password(secret),
                unrestricted=unrestricted, expires_at=expiry,
            )
            credential.roles.set(delegated)
    except IntegrityError:
        raise errors.Conflict(
            f"Conflict occurred attempting to store application_credential - duplicate name {name}."
        ) from None
    return credential, secret


def list_credentials(
    ctx: RequestContext, user_id: str, *, name: str | None = None
) -> QuerySet[ApplicationCredential]:
    _own_or_admin(ctx, user_id)
    user = get_user(user_id)
    credentials = ApplicationCredential.objects.filter(user=user).prefetch_related("roles")
    if name is not None:
        credentials = credentials.filter(name=name)
    return credentials.order_by("name")


def get_credential(ctx: RequestContext, user_id: str, credential_id: str) -> ApplicationCredential:
    _own_or_admin(ctx, user_id)
    credential = ApplicationCredential.objects.filter(pk=credential_id, user_id=user_id).first()
    if credential is None:
        raise errors.NotFound(f"Could not find Application Credential: {credential_id}.")
    return credential


def delete_credential(ctx: RequestContext, user_id: str, credential_id: str) -> None:
    """Delete it, and with it (the foreign key cascades) every token got with it."""
    credential = get_credential(ctx, user_id, credential_id)
    _refuse_restricted(ctx, "delete")
    credential.delete()
