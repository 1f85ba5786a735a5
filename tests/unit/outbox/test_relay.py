"""The outbox (cloud/outbox/): a message leaves only after its transaction commits, a broker that
is away delays it without failing the request or losing it, and a rolled-back change sends
nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from cloud import rpc
from cloud.beat import TASK_RELAY_OUTBOX
from cloud.outbox import relay
from cloud.outbox.models import OutboxMessage
from compute_agent import messages as msg
from tests.factories import boot

pytestmark = pytest.mark.django_db


@pytest.fixture
def broker_down(monkeypatch):
    """The broker refuses every publish until `.back()` (the real one is the edge here)."""
    from cloud.celery import app

    class Broker:
        down = True

        def back(self):
            self.down = False

    broker = Broker()
    real = app.send_task

    def send_task(*args, **kwargs):
        if broker.down:
            raise ConnectionRefusedError(111, "Connection refused")
        return real(*args, **kwargs)

    monkeypatch.setattr(app, "send_task", send_task)
    return broker


def _age(seconds: float) -> None:
    OutboxMessage.objects.update(created_at=timezone.now() - timedelta(seconds=seconds))


def test_a_message_is_published_after_the_commit_and_then_forgotten(sent):
    with transaction.atomic():
        rpc.schedule_instance("i-1", "req-1")
        assert sent == [] and OutboxMessage.objects.count() == 1
    assert [(s.name, s.args, s.queue) for s in sent] == [
        (msg.TASK_SCHEDULE_INSTANCE, ["i-1", "req-1", True], msg.SCHEDULER_QUEUE)]
    assert OutboxMessage.objects.count() == 0


def test_a_rolled_back_change_sends_nothing_and_leaves_nothing(sent):
    with pytest.raises(RuntimeError), transaction.atomic():
        rpc.schedule_instance("i-1", "req-1")
        raise RuntimeError("the change failed")
    assert sent == [] and OutboxMessage.objects.count() == 0


def test_while_the_broker_is_away_a_boot_is_accepted_and_its_message_waits(
    member, api_as, tiny, image, sent, broker_down
):
    response = boot(api_as(member), image)
    assert response.status_code == 202, response.content
    waiting = OutboxMessage.objects.get()
    assert waiting.task == msg.TASK_SCHEDULE_INSTANCE and waiting.attempts == 1
    assert "Connection refused" in waiting.last_error
    assert sent == []

    _age(5)
    assert relay.relay_pending() == 0  # still away: kept, tried once more
    assert OutboxMessage.objects.get().attempts == 2
    broker_down.back()
    assert relay.relay_pending() == 1
    assert [s.args[0] for s in sent] == [response.json()["server"]["id"]]
    assert OutboxMessage.objects.count() == 0


def test_the_relay_leaves_young_messages_to_their_own_publisher(sent, broker_down):
    rpc.schedule_instance("i-1", "req-1")  # outside a transaction: stored, tried at once
    broker_down.back()
    assert relay.relay_pending(older_than=60) == 0 and OutboxMessage.objects.count() == 1
    assert relay.relay_pending(older_than=0) == 1 and OutboxMessage.objects.count() == 0


def test_a_question_for_a_host_while_the_broker_is_away_is_a_503(broker_down):
    from cloud import errors

    with pytest.raises(errors.ServiceUnavailable):
        rpc.to_host_now("compute1", msg.TASK_CONSOLE_OUTPUT, msg.ConsoleOutputRequest(
            request_id="r", instance_uuid="i-1"))


def test_beat_relays_the_outbox_through_the_conductor():
    entries = [e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == TASK_RELAY_OUTBOX]
    assert [e["options"]["queue"] for e in entries] == [msg.CONDUCTOR_QUEUE]


@pytest.fixture
def batched(settings):
    """Published rows deleted in batches, as in production, by a thread that does not get to run
    during the test (an hour apart): the test deletes the batch itself."""
    settings.KUMO_OUTBOX_FORGET_EVERY = 3600
    yield
    relay.forget_published()


def test_published_rows_are_deleted_together_in_one_statement(sent, batched):
    for i in range(3):
        rpc.schedule_instance(f"i-{i}", "req-1")  # outside a transaction: published at once
    assert len(sent) == 3
    # Sent, so not waiting for the broker, and not sent again by this process's relay.
    assert OutboxMessage.objects.count() == 3 and relay.backlog() == 0
    assert relay.relay_pending(older_than=0) == 0 and len(sent) == 3

    with CaptureQueriesContext(connection) as queries:
        assert relay.forget_published() == 3
    assert len(queries) == 1 and queries[0]["sql"].startswith("DELETE")
    assert OutboxMessage.objects.count() == 0


def test_a_message_whose_publisher_died_before_deleting_its_row_is_sent_again(
    sent, batched, monkeypatch
):
    import os

    rpc.schedule_instance("i-1", "req-1")
    # The process dies before its thread deletes the row; the relay runs in another process, which
    # knows nothing of what the dead one meant to delete.
    other_process = os.getpid() + 1
    monkeypatch.setattr(relay.os, "getpid", lambda: other_process)
    assert relay.backlog() == 1

    assert relay.relay_pending(older_than=0) == 1
    assert [s.args[0] for s in sent] == ["i-1", "i-1"]  # at least once; the task is idempotent
    relay.forget_published()
    assert OutboxMessage.objects.count() == 0


def test_the_broker_sees_an_instance_id_not_the_whole_request_in_its_argument_summary(
    monkeypatch
):
    from cloud.celery import app

    seen: dict = {}
    monkeypatch.setattr(app, "send_task", lambda *a, **k: seen.update(k))
    token = "gAAAA-image-download-token"
    relay.publish(OutboxMessage.objects.create(
        task=msg.TASK_SPAWN, queue="compute.c1",
        args=[{"instance_uuid": "i-1", "image": {"token": token}}]))
    assert seen["argsrepr"] == "['i-1']" and token not in seen["argsrepr"]


def _spawns(n: int, monkeypatch) -> list:
    from tests.broker import CommitsRun

    CommitsRun().install(monkeypatch)  # on-commit callbacks run as a real commit runs them
    with transaction.atomic():
        return relay.enqueue_many([(msg.TASK_SPAWN, [{"instance_uuid": f"i-{i}"}], f"compute.c{i}")
                                   for i in range(n)])


def test_a_batch_of_messages_leaves_through_one_producer_in_order(monkeypatch):
    from cloud.celery import app

    calls: list = []
    monkeypatch.setattr(app, "send_task", lambda name, **k: calls.append((k["queue"],
                                                                          k["producer"])))
    _spawns(3, monkeypatch)
    assert [queue for queue, _ in calls] == ["compute.c0", "compute.c1", "compute.c2"]
    producers = {id(producer) for _, producer in calls}
    # One producer taken from the pool for all three, not one each (send_task's own acquire).
    assert len(producers) == 1 and calls[0][1] is not None
    relay.forget_published()
    assert OutboxMessage.objects.count() == 0


def test_when_the_broker_refuses_one_of_a_batch_the_rest_wait_in_the_outbox_and_are_relayed(
    monkeypatch
):
    from cloud.celery import app

    calls: list = []

    def send_task(name, args=None, queue="", **_):
        calls.append(queue)
        if queue == "compute.c1" and len(calls) == 2:
            raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(app, "send_task", send_task)
    stored = _spawns(3, monkeypatch)
    # The first left; the second was refused; the third was not tried (the broker is away).
    assert calls == ["compute.c0", "compute.c1"]
    relay.forget_published()
    kept = {m.queue: m for m in OutboxMessage.objects.all()}
    assert sorted(kept) == ["compute.c1", "compute.c2"]
    assert "Connection refused" in kept["compute.c1"].last_error
    assert kept["compute.c2"].attempts == 1 and "not tried" in kept["compute.c2"].last_error
    assert {m.pk for m in stored[1:]} == {m.pk for m in kept.values()}

    _age(5)
    assert relay.relay_pending() == 2
    assert calls[2:] == ["compute.c1", "compute.c2"]
    relay.forget_published()
    assert OutboxMessage.objects.count() == 0
