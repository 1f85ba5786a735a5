"""Token issue and validation. A token is 32 random bytes shown once; only its SHA-256 is stored."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from .context import RequestContext
from .models import Project, RoleAssignment, Token, User


class AuthenticationError(Exception):
    """Wrong user, password, project or token; the message never says which part was wrong."""


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class IssuedToken:
    token: str  # the secret; goes to the client once, in X-Subject-Token
    record: Token
    roles: list[tuple[str, str]]  # (role id, role name)


def roles_of(user: User, project: Project | None) -> list[tuple[str, str]]:
    if project is None:
        return []
    rows = RoleAssignment.objects.filter(user=user, project=project).select_related("role")
    return sorted({(a.role.id, a.role.name) for a in rows}, key=lambda r: r[1])


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


def find_project(*, project_id: str | None, project_name: str | None) -> Project | None:
    if project_id:
        return Project.objects.filter(pk=project_id).first()
    if project_name:
        return Project.objects.filter(name=project_name).first()
    return None


def issue(
    user: User, project: Project | None, methods: list[str], *, ttl: int | None = None
) -> IssuedToken:
    """A new token for `user`, scoped to `project`, valid `ttl` seconds (KUMO_TOKEN_TTL if None)."""
    roles = []
    if project is not None:
        if not project.enabled:
            raise AuthenticationError("The project is disabled.")
        roles = roles_of(user, project)
        if not roles:
            raise AuthenticationError(
                "User has no access to the project."
            )
    token = secrets.token_urlsafe(32)
    now = timezone.now()
    record = Token.objects.create(
        token_hash=_hash(token),
        user=user,
        project=project,
        methods=methods,
        audit_id=base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("="),
        issued_at=now,
        expires_at=now + timedelta(seconds=settings.KUMO_TOKEN_TTL if ttl is None else ttl),
    )
    return IssuedToken(token=token, record=record, roles=roles)


def lookup(token: str) -> Token | None:
    """The live token record for a secret, or None if unknown or expired."""
    record = (
        Token.objects.select_related("user", "project").filter(token_hash=_hash(token)).first()
    )
    if record is None or record.expires_at <= timezone.now() or not record.user.enabled:
        return None
    if record.project is not None and not record.project.enabled:
        return None
    return record


def validate(token: str, request_id: str = "-") -> RequestContext | None:
    record = lookup(token)
    if record is None:
        return None
    roles = tuple(name for _, name in roles_of(record.user, record.project))
    if record.project is not None and not roles:
        return None  # every role on the project was revoked since the token was issued
    return RequestContext(
        user_id=record.user_id,
        user_name=record.user.name,
        project_id=record.project_id,
        project_name=record.project.name if record.project else None,
        roles=roles,
        request_id=request_id,
    )


def revoke(token: str) -> bool:
    deleted, _ = Token.objects.filter(token_hash=_hash(token)).delete()
    return deleted > 0


def purge_expired() -> int:
    deleted, _ = Token.objects.filter(expires_at__lte=timezone.now()).delete()
    return deleted
