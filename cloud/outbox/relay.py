"""Publishing the outbox: a message leaves for the broker only once the change it announces is
committed, and it is never lost on the way.

cloud/rpc.py writes each message as a row in the caller's transaction; after the commit it tries to
publish that row at once (the fast path: one publish, then the row is deleted). When the broker is
unreachable the row simply stays, the request still succeeds, and `relay_pending` (run by beat
through the conductor) publishes it once the broker is back. A broker outage therefore delays
work instead of failing it, and a process that dies between its commit and its publish loses
nothing.

Delivery is at least once: a process that published but died before deleting the row has it sent
again by the relay. Every Kumo task is idempotent, so a repeat changes nothing.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from cloud import tracing
from cloud.celery import app

from .models import OutboxMessage

log = logging.getLogger(__name__)

# Give up on one publish quickly when the broker does not answer: the row is kept, so the caller
# (a web request, a worker's task) goes on instead of waiting for the broker.
PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.1,
                        "interval_max": 0.2}


def enqueue(task: str, args: list, queue: str) -> OutboxMessage:
    """Store a message inside the caller's transaction, and publish it right after the commit."""
    message = OutboxMessage.objects.create(task=task, args=args, queue=queue,
                                           headers=tracing.carrier())
    transaction.on_commit(lambda: publish(message))
    return message


def publish(message: OutboxMessage) -> bool:
    """Hand one stored message to the broker and forget it; False (the row kept, the error noted)
    when the broker could not take it. Never raises."""
    try:
        app.send_task(message.task, args=message.args, queue=message.queue,
                      headers=message.headers or None, retry=True,
                      retry_policy=PUBLISH_RETRY_POLICY)
    except Exception as exc:  # noqa: BLE001 - whatever the transport raises, the row stays
        OutboxMessage.objects.filter(pk=message.pk).update(
            attempts=F("attempts") + 1, last_error=f"{type(exc).__name__}: {exc}"[:255])
        log.warning("broker unreachable; %s for %s kept in the outbox: %s",
                    message.task, message.queue, exc)
        return False
    OutboxMessage.objects.filter(pk=message.pk).delete()
    return True


def relay_pending(*, older_than: float = 1.0, limit: int = 500) -> int:
    """Publish the messages the fast path could not, oldest first; how many left.

    Rows younger than `older_than` seconds are left to their own fast path. Each row is taken
    under a SKIP LOCKED row lock, so relays running at once never publish the same row; the first
    refusal stops the sweep (the broker is still away) and the rest wait for the next one."""
    cutoff = timezone.now() - timedelta(seconds=older_than)
    sent = 0
    with transaction.atomic():
        pending = list(
            OutboxMessage.objects.select_for_update(skip_locked=True)
            .filter(created_at__lt=cutoff).order_by("id")[:limit]
        )
        for message in pending:
            if not publish(message):
                break
            sent += 1
    if sent:
        log.info("relayed %d message(s) from the outbox", sent)
    return sent


def backlog() -> int:
    """How many messages wait for the broker (for logs, metrics and tests)."""
    return OutboxMessage.objects.count()
