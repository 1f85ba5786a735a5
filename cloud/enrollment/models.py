from __future__ import annotations

import uuid

from django.db import models


class JoinToken(models.Model):
    """A one-time ticket for a machine to join as compute host `host` (join_tokens.py).

    Only the SHA-256 of the token is stored. It is spent by a conditional UPDATE of `used_at`, so
    two machines racing with one token cannot both join.
    """

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    host = models.CharField(max_length=63, db_index=True)
    token_hash = models.CharField(max_length=64, unique=True)
    issued_by = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"join token for {self.host}"


class HostCredential(models.Model):
    """A joined host's own broker user and signing secret (host_credentials.py).

    Neither secret is stored: the broker keeps only its hash of the password, and the signing
    secret is derived from `secret_salt` with the control plane's SECRET_KEY, so a copy of the
    database alone signs nothing.
    """

    host = models.CharField(max_length=63, unique=True)
    broker = models.CharField(max_length=16)  # the broker_users driver: rabbitmq, redis, fake
    broker_user = models.CharField(max_length=255, unique=True)
    secret_salt = models.CharField(max_length=64)
    joined_at = models.DateTimeField()

    class Meta:
        ordering = ["host"]

    def __str__(self) -> str:
        return f"{self.host} ({self.broker} user {self.broker_user})"
