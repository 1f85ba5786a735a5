"""Publishing the outbox: a message leaves for the broker only once the change it announces is
committed, and it is never lost on the way.

cloud/rpc.py writes each message as a row in the caller's transaction; after the commit it tries to
publish that row at once (the fast path). When the broker is unreachable the row simply stays, the
request still succeeds, and `relay_pending` (run by beat through the conductor) publishes it once
the broker is back. A broker outage therefore delays work instead of failing it, and a process
that dies between its commit and its publish loses nothing.

A published row is not deleted by a commit of its own: each process notes the ids it published
and one thread of it deletes them together every KUMO_OUTBOX_FORGET_EVERY seconds (0.1 by
default), one DELETE and one commit for a whole batch instead of a second durable commit for
every message (`_Forgetter`). 0 deletes each row at once, as the publisher's next statement.

Delivery is at least once: a process that published but died before deleting the row (within the
last tenth of a second, or just before its delete) has it sent again by the relay, which only
takes rows older than a second. Every Kumo task is idempotent, so a repeat changes nothing.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, transaction
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
DEFAULT_FORGET_EVERY = 0.1
_TABLE = OutboxMessage._meta.db_table


def enqueue(task: str, args: list, queue: str) -> OutboxMessage:
    """Store a message inside the caller's transaction, and publish it right after the commit."""
    message = OutboxMessage(task=task, args=args, queue=queue, headers=tracing.carrier(),
                            created_at=timezone.now())
    # Written out: the ORM's save() cost more CPU than the INSERT, for every message sent.
    json_field = OutboxMessage._meta.get_field("args")
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {_TABLE} (task, queue, args, headers, created_at, attempts, last_error) "
            "VALUES (%s, %s, %s, %s, %s, 0, '') RETURNING id",
            [task, queue, json_field.get_db_prep_save(args, connection),
             json_field.get_db_prep_save(message.headers, connection),
             connection.ops.adapt_datetimefield_value(message.created_at)])
        message.pk = cursor.fetchone()[0]
    message._state.adding = False
    message._state.db = connection.alias
    transaction.on_commit(lambda: publish(message))
    return message


def enqueue_many(messages: list[tuple[str, list, str]]) -> list[OutboxMessage]:
    """`enqueue` for several (task, args, queue) at once: one INSERT for all of them (a scheduler
    that placed several instances in one transaction sends several spawns)."""
    if not messages:
        return []
    now = timezone.now()
    headers = tracing.carrier()
    json_field = OutboxMessage._meta.get_field("args")
    stamp = connection.ops.adapt_datetimefield_value(now)
    saved_headers = json_field.get_db_prep_save(headers, connection)
    params: list = []
    for task, args, queue in messages:
        params += [task, queue, json_field.get_db_prep_save(args, connection), saved_headers,
                   stamp]
    rows = ", ".join(["(%s, %s, %s, %s, %s, 0, '')"] * len(messages))
    with connection.cursor() as cursor:
        # A multi-row VALUES inserts, and returns, its rows in the order written.
        cursor.execute(
            f"INSERT INTO {_TABLE} (task, queue, args, headers, created_at, attempts, last_error) "
            f"VALUES {rows} RETURNING id", params)
        ids = [row[0] for row in cursor.fetchall()]
    stored = []
    for (task, args, queue), pk in zip(messages, ids, strict=True):
        message = OutboxMessage(pk=pk, task=task, args=args, queue=queue, headers=headers,
                                created_at=now)
        message._state.adding = False
        message._state.db = connection.alias
        stored.append(message)
    transaction.on_commit(lambda: publish_many(stored))
    return stored


def publish(message: OutboxMessage, producer: Any = None) -> bool:
    """Hand one stored message to the broker and forget it; False (the row kept, the error noted)
    when the broker could not take it. Never raises. `producer`: one the caller holds for several
    messages (publish_many); otherwise one is taken from the app's pool for this message."""
    try:
        app.send_task(message.task, args=message.args, queue=message.queue,
                      headers=message.headers or None, retry=True,
                      retry_policy=PUBLISH_RETRY_POLICY, producer=producer,
                      argsrepr=_brief(message.args), kwargsrepr="{}")
    except Exception as exc:  # noqa: BLE001 - whatever the transport raises, the row stays
        _note_failure([message], exc)
        return False
    _forgetter.forget(message.pk)
    return True


def publish_many(messages: list[OutboxMessage]) -> int:
    """`publish` for several messages through one producer taken from the pool once (a pool
    round trip per message was a tenth of a scheduler batch's publishing). The first refusal
    stops it: the broker is away, and the rest are noted and left to the relay rather than each
    waiting out its retries. How many were published. Never raises."""
    if len(messages) <= 1:
        return sum(publish(m) for m in messages)
    sent = 0
    try:
        with app.producer_or_acquire() as producer:
            for message in messages:
                if not publish(message, producer):
                    break
                sent += 1
    except Exception as exc:  # noqa: BLE001 - the pool could not give a producer
        _note_failure(messages[sent:], exc)
        return sent
    if sent < len(messages):
        # The failed one was noted by publish.
        _note_failure(messages[sent + 1:], "not tried: the broker refused the one before")
    return sent


def _note_failure(messages: list[OutboxMessage], why: Exception | str) -> None:
    if not messages:
        return
    text = why if isinstance(why, str) else f"{type(why).__name__}: {why}"
    OutboxMessage.objects.filter(pk__in=[m.pk for m in messages]).update(
        attempts=F("attempts") + 1, last_error=text[:255])
    for message in messages:
        log.warning("broker unreachable; %s for %s kept in the outbox: %s",
                    message.task, message.queue, text)


def _brief(args: list) -> str:
    """What Celery shows of the arguments in its events and logs. Its own repr of them costs a
    fifth of a millisecond per message and would copy whole requests, image tokens included, into
    the message's headers; an instance's (or a volume's) id says which one it is."""
    shown = [a.get("instance_uuid") or a.get("volume_id") or "{…}" if isinstance(a, dict) else a
             for a in args]
    return repr(shown)[:256]


class _Forgetter:
    """The ids this process published whose rows are still to be deleted, and the thread that
    deletes them in batches. A fork starts afresh: the parent deletes what it published."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids: list[int] = []
        self._pid = 0
        self._failing = False

    def forget(self, pk: int) -> None:
        every = _forget_every()
        if every <= 0:
            _delete([pk])
            return
        with self._lock:
            if self._pid != os.getpid():
                self._ids = []
                self._pid = os.getpid()
                threading.Thread(target=self._run, args=(every,), name="outbox-forget",
                                 daemon=True).start()
            self._ids.append(pk)

    def pending(self) -> list[int]:
        """The ids published but not deleted yet (this process's only)."""
        with self._lock:
            return list(self._ids) if self._pid == os.getpid() else []

    def flush(self) -> int:
        """Delete the rows of everything published so far; how many. On a database error the ids
        are kept for the next try (a row deleted late is at worst re-sent by the relay)."""
        with self._lock:
            if self._pid != os.getpid():
                return 0
            ids, self._ids = self._ids, []
        if not ids:
            return 0
        try:
            _delete(ids)
        except DatabaseError as exc:  # the database is away: keep them for the next round
            # Once per outage, not every tenth of a second.
            log_it = log.warning if not self._failing else log.debug
            self._failing = True
            log_it("could not delete %d published outbox row(s), retrying: %s", len(ids), exc)
            if not connection.in_atomic_block:
                connection.close()  # a fresh one next round
            with self._lock:
                self._ids[:0] = ids
            return 0
        self._failing = False
        return len(ids)

    def _run(self, every: float) -> None:
        while True:
            time.sleep(every)
            try:
                self.flush()
            except Exception:  # the thread must outlive any one failure
                log.exception("deleting published outbox rows failed")


def _forget_every() -> float:
    return float(getattr(settings, "KUMO_OUTBOX_FORGET_EVERY", DEFAULT_FORGET_EVERY))


def _delete(ids: list[int]) -> None:
    # Written out: the ORM's delete() collects the rows first (a SELECT and a DELETE) and costs
    # more CPU than the statement; the outbox has no relation that would need collecting.
    marks = ", ".join(["%s"] * len(ids))
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {_TABLE} WHERE id IN ({marks})", ids)


_forgetter = _Forgetter()
# A worker stopping deletes what it published, rather than have the relay send it again.
atexit.register(_forgetter.flush)


def forget_published() -> int:
    """Delete the rows of every message this process has published so far (what the thread does
    every KUMO_OUTBOX_FORGET_EVERY seconds); how many."""
    return _forgetter.flush()


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
            .filter(created_at__lt=cutoff).exclude(pk__in=_forgetter.pending())
            .order_by("id")[:limit]
        )
        for message in pending:
            if not publish(message):
                break
            sent += 1
    if sent:
        log.info("relayed %d message(s) from the outbox", sent)
    return sent


def backlog() -> int:
    """How many messages wait for the broker (for logs, metrics and tests): rows this process
    published and has yet to delete do not wait."""
    return OutboxMessage.objects.exclude(pk__in=_forgetter.pending()).count()
