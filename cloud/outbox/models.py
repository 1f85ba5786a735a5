"""A message the control plane has decided to send, stored with the change that caused it."""

from __future__ import annotations

from django.db import models


class OutboxMessage(models.Model):
    """One Celery task to publish: written in the transaction whose commit it announces, deleted
    once the broker has taken it (cloud/outbox/relay.py)."""

    task = models.CharField(max_length=128)
    queue = models.CharField(max_length=255)
    args = models.JSONField(default=list)
    # The trace context of the request that caused it (cloud/tracing.py): sent as message headers,
    # so a message the relay publishes late still joins its request's trace. {} when tracing is off.
    headers = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.task} → {self.queue}"
