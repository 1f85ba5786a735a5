"""What a console token connects to, for an admin's console proxy (os-console-auth-tokens): the
instance, host and port bound to an unexpired token. Tokens themselves are issued and consumed by
compute/consoles.py; this only reads them, by the same hash."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils import timezone

from cloud import errors

from .consoles import hash_token
from .models import ConsoleToken


@dataclass(frozen=True)
class ConnectInfo:
    instance_uuid: str
    host: str
    port: int | None
    console_type: str


def connect_info(token: str) -> ConnectInfo:
    """404 for a token that is unknown or expired."""
    row = ConsoleToken.objects.filter(token_hash=hash_token(token),
                                      expires_at__gt=timezone.now()).first()
    if row is None:
        raise errors.NotFound("Token not found")
    return ConnectInfo(str(row.instance_id), row.host, row.port, row.console_type)
