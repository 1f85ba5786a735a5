"""Token issue and validation. A token is 32 random bytes shown once; only its SHA-256 is stored."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.utils import timezone

from . import assignments, token_cache
from .context import RequestContext
from .models import ApplicationCredential, Project, Token, User


class AuthenticationError(Exception):
    """Wrong user, password, project or token; the message never says which part was wrong."""


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class IssuedToken:
    token: str  # the secret; goes to the client once, in X-Subject-Token
    record: Token
    roles: list[tuple[str, str]]  # (role id, role name)


def roles_of(
    user: User, project: Project | None, credential: ApplicationCredential | None = None
) -> list[tuple[str, str]]:
    """The roles a token of the user on the project carries: every one the user holds there
    (directly or through a group), or, for an application credential, those of its roles the
    user still holds."""
    roles = assignments.roles_of(user.id, project.id if project else None)
    if credential is not None:
        delegated = set(credential.roles.values_list("id", flat=True))
        roles = [r for r in roles if r[0] in delegated]
    return roles


def authenticate_password(
    *, user_id: str | None, user_name: str | None, password: str
) -> User:
    user = None
    if user_id:
        user = User.objects.filter(pk=user_id).first()
    elif user_name:
        user = User.objects.filter(name=user_name).first()
    if user is None:
        User().set_password(password)  # spend the time of a real check: no user-name oracle
        raise AuthenticationError("The request you have made requires authentication.")
    if not user.enabled or not user.check_password(password):
        raise AuthenticationError("The request you have made requires authentication.")
    return user


def authenticate_application_credential(
    *, credential_id: str | None, name: str | None, user_id: str | None, user_name: str | None,
    secret: str
) -> ApplicationCredential:
    """The application credential named by id, or by name and its user, if the secret is its
    own, it has not expired and its user is enabled."""
    credentials = ApplicationCredential.objects.select_related("user", "project")
    if credential_id:
        credential = credentials.filter(pk=credential_id).first()
    elif name and (user_id or user_name):
        owner = {"user_id": user_id} if user_id else {"user__name": user_name}
        credential = credentials.filter(name=name, **owner).first()
    else:
        raise AuthenticationError("An application credential is named by its id, or by its name "
                                  "and its user.")
    if credential is None:
        make_password(secret)  # spend the time of a real check: no id oracle
        raise AuthenticationError("The request you have made requires authentication.")
    if not check_password(secret, credential.secret_hash) or not credential.user.enabled:
        raise AuthenticationError("The request you have made requires authentication.")
    if credential.expires_at is not None and credential.expires_at <= timezone.now():
        raise AuthenticationError("The application credential has expired.")
    return credential


def find_project(*, project_id: str | None, project_name: str | None) -> Project | None:
    if project_id:
        return Project.objects.filter(pk=project_id).first()
    if project_name:
        return Project.objects.filter(name=project_name).first()
    return None


def issue(
    user: User,
    project: Project | None,
    methods: list[str],
    *,
    ttl: int | None = None,
    application_credential: ApplicationCredential | None = None,
    not_after: datetime | None = None,
) -> IssuedToken:
    """A new token for `user`, scoped to `project`, valid `ttl` seconds (KUMO_TOKEN_TTL if None),
    and never beyond `not_after` nor the application credential it was got with, if any."""
    roles = []
    if project is not None:
        if not project.enabled:
            raise AuthenticationError("The project is disabled.")
        roles = roles_of(user, project, application_credential)
        if not roles:
            raise AuthenticationError(
                "User has no access to the project."
            )
    token = secrets.token_urlsafe(32)
    now = timezone.now()
    expires_at = now + timedelta(seconds=settings.KUMO_TOKEN_TTL if ttl is None else ttl)
    if application_credential is not None and application_credential.expires_at is not None:
        expires_at = min(expires_at, application_credential.expires_at)
    if not_after is not None:
        expires_at = min(expires_at, not_after)
    record = Token.objects.create(
        token_hash=_hash(token),
        user=user,
        project=project,
        application_credential=application_credential,
        methods=methods,
        audit_id=base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("="),
        issued_at=now,
        expires_at=expires_at,
    )
    return IssuedToken(token=token, record=record, roles=roles)


def lookup(token: str) -> Token | None:
    """The live token record for a secret, or None if unknown or expired."""
    return _live_record(_hash(token))


def _live_record(token_hash: str) -> Token | None:
    record = (
        Token.objects.select_related("user", "project", "application_credential")
        .filter(token_hash=token_hash)
        .first()
    )
    if record is None or record.expires_at <= timezone.now() or not record.user.enabled:
        return None
    if record.project is not None and not record.project.enabled:
        return None
    return record


def validate(token: str, request_id: str = "-") -> RequestContext | None:
    """Who the token speaks for, or None if it is unknown, expired or no longer entitled. What a
    token validated to is reused from this process's memory while no identity row has changed
    anywhere since (token_cache.py says why that honours a revocation at the next request)."""
    token_hash = _hash(token)
    generation = token_cache.current_generation()  # read before the database: see token_cache
    cached = token_cache.get(token_hash, generation)
    if cached is not None:
        return replace(cached, request_id=request_id)
    record = _live_record(token_hash)
    if record is None:
        return None
    credential = record.application_credential
    roles = tuple(name for _, name in roles_of(record.user, record.project, credential))
    if record.project is not None and not roles:
        return None  # every role on the project was revoked since the token was issued
    context = RequestContext(
        user_id=record.user_id,
        user_name=record.user.name,
        project_id=record.project_id,
        project_name=record.project.name if record.project else None,
        roles=roles,
        request_id=request_id,
        application_credential_id=credential.id if credential else None,
        restricted=credential is not None and not credential.unrestricted,
    )
    token_cache.put(token_hash, generation, context, record.expires_at)
    return context


def revoke(token: str) -> bool:
    deleted, _ = Token.objects.filter(token_hash=_hash(token)).delete()
    return deleted > 0


def purge_expired() -> int:
    deleted, _ = Token.objects.filter(expires_at__lte=timezone.now()).delete()
    return deleted
