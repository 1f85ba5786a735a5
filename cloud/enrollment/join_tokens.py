"""Join tokens: one-time tickets for a machine to join as a named compute host.

A token is 32 random bytes in hex (never starting with '-', which a command line would take for
an option), shown once when issued (`manage.py host-token`, or
POST /compute/v2.1/os-host-tokens); only its SHA-256 is stored, bound to the host name, with an
expiry. `take()` spends it.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from cloud import errors
from compute_agent import messages as msg

from .models import JoinToken

MIN_TTL = 60
MAX_TTL = 7 * 24 * 3600


@dataclass(frozen=True)
class IssuedToken:
    token: str  # the secret, shown once
    record: JoinToken


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_host_name(host: str) -> None:
    if not msg.HOST_NAME.match(host):
        raise errors.BadRequest(
            f"Invalid host name {host!r}: use letters, digits, '.', '_' or '-', at most 63, "
            "starting with a letter or digit.")


def issue(host: str, ttl: int | None = None, issued_by: str = "") -> IssuedToken:
    """A new token for `host`, valid `ttl` seconds (KUMO_JOIN_TOKEN_TTL by default)."""
    check_host_name(host)
    ttl = settings.KUMO_JOIN_TOKEN_TTL if ttl is None else ttl
    if not MIN_TTL <= ttl <= MAX_TTL:
        raise errors.BadRequest(f"Invalid ttl {ttl}: between {MIN_TTL} and {MAX_TTL} seconds.")
    token = secrets.token_hex(32)
    record = JoinToken.objects.create(
        host=host,
        token_hash=_hash(token),
        issued_by=issued_by,
        expires_at=timezone.now() + timedelta(seconds=ttl),
    )
    return IssuedToken(token, record)


def take(token: str) -> JoinToken:
    """Spend `token`: its record, now used. Unauthorized, saying why, when it is unknown, expired
    or already used.

    Runs in the caller's transaction: if what the token pays for fails afterwards, the rollback
    leaves the token unspent.
    """
    now = timezone.now()
    record = JoinToken.objects.filter(token_hash=_hash(token)).first()
    if record is None:
        raise errors.Unauthorized("This join token is not valid: ask for a new one "
                                  "(manage.py host-token --host NAME).")
    if record.used_at is not None:
        raise errors.Unauthorized(f"This join token was already used, at "
                                  f"{record.used_at.isoformat(timespec='seconds')}.")
    if record.expires_at <= now:
        raise errors.Unauthorized(f"This join token expired at "
                                  f"{record.expires_at.isoformat(timespec='seconds')}.")
    spent = JoinToken.objects.filter(
        pk=record.pk, used_at__isnull=True, expires_at__gt=now
    ).update(used_at=now)
    if spent != 1:  # another join took it between the read and the update
        raise errors.Unauthorized("This join token was already used.")
    record.used_at = now
    return record


def withdraw(host: str) -> int:
    """Delete the host's unspent tokens (its credential is being revoked); how many."""
    deleted, _ = JoinToken.objects.filter(host=host, used_at__isnull=True).delete()
    return deleted
