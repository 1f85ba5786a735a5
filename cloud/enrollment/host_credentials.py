"""Host credentials: a joined host's own broker user and signing secret.

`join()` trades a join token for them; `revoke()` takes them away. The broker password is made
here, handed to the host once and never stored; the signing secret is derived from a stored salt
and SECRET_KEY whenever the conductor needs it (`secret_of`).
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac

from cloud import errors

from . import broker_users, join_tokens
from .models import HostCredential

log = logging.getLogger(__name__)

_SECRET_PURPOSE = "kumo.enrollment.host-secret"


@dataclass(frozen=True)
class Joined:
    """What a joining host is told, once: everything its agent needs to run."""

    host: str
    broker: str
    broker_url: str = field(repr=False)  # with the host's user and password
    host_secret: str = field(repr=False)
    internal_url: str = ""
    heartbeat_interval: float = 10.0


def secret_of(credential: HostCredential) -> str:
    return salted_hmac(_SECRET_PURPOSE, credential.secret_salt, algorithm="sha256").hexdigest()


def join(token: str, host: str | None = None) -> Joined:
    """Spend `token` and give its host a new broker user and secret, replacing any it had (a
    machine re-installed joins again with a new token).

    Unauthorized for a token that cannot be spent, BadRequest when `host` is not the host it was
    issued for, ServiceUnavailable when the broker refuses the user — then the token is still
    unspent and the join can be tried again.
    """
    users = broker_users.driver()
    password = secrets.token_urlsafe(32)
    with transaction.atomic():
        record = join_tokens.take(token)
        if host is not None and host != record.host:
            raise errors.BadRequest(
                f"This join token is for host {record.host!r}, not {host!r}.")
        try:
            username = users.create(record.host, password)
        except broker_users.BrokerUserError as exc:
            log.error("join of host %s failed: %s", record.host, exc)
            raise errors.ServiceUnavailable(
                f"The broker did not accept host {record.host}'s user; try again: {exc}") from exc
        credential, _ = HostCredential.objects.update_or_create(
            host=record.host,
            defaults={"broker": users.kind, "broker_user": username,
                      "secret_salt": secrets.token_hex(16), "joined_at": timezone.now()},
        )
    log.info("host %s joined with broker user %s", record.host, username)
    return Joined(
        host=record.host,
        broker=users.kind,
        broker_url=users.host_url(username, password),
        host_secret=secret_of(credential),
        internal_url=settings.KUMO_INTERNAL_URL,
        heartbeat_interval=settings.KUMO_HEARTBEAT_INTERVAL,
    )


@dataclass(frozen=True)
class Revoked:
    credential: bool  # the host had a credential, now gone with its broker user
    tokens: int  # unspent join tokens withdrawn


def revoke(host: str) -> Revoked:
    """Remove the host's broker user (its connections end, and it cannot connect again), its
    credential and its unspent join tokens (a host that never joined may have some). Its compute
    service and instances are untouched."""
    join_tokens.check_host_name(host)
    credential = HostCredential.objects.filter(host=host).first()
    if credential is not None:
        try:
            broker_users.driver().delete(host)
        except broker_users.BrokerUserError as exc:
            raise errors.ServiceUnavailable(f"The broker did not remove host {host}'s user: {exc}"
                                            ) from exc
    with transaction.atomic():
        withdrawn = join_tokens.withdraw(host)
        deleted, _ = HostCredential.objects.filter(host=host).delete()
    if deleted:
        log.info("host %s revoked: broker user removed", host)
    return Revoked(credential=bool(deleted), tokens=withdrawn)
