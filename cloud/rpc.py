"""Every message the control plane sends, in one place. Each is published only after the current
database transaction commits, so a worker never sees a row that is not there yet (or never will be).
Arguments are ids and contract dataclasses (compute_agent.messages), JSON only."""

from __future__ import annotations

from django.db import transaction

from compute_agent import messages as msg

from .celery import app


def _send_after_commit(name: str, args: list, queue: str) -> None:
    transaction.on_commit(lambda: app.send_task(name, args=args, queue=queue))


def schedule_instance(instance_uuid: str, request_id: str) -> None:
    _send_after_commit(
        msg.TASK_SCHEDULE_INSTANCE, [str(instance_uuid), request_id], msg.SCHEDULER_QUEUE
    )


def spawn(host: str, request: msg.SpawnRequest) -> None:
    _send_after_commit(msg.TASK_SPAWN, [request.to_dict()], msg.compute_queue(host))


def destroy(host: str, request: msg.DestroyRequest) -> None:
    _send_after_commit(msg.TASK_DESTROY, [request.to_dict()], msg.compute_queue(host))


def to_host(host: str, task: str, request: msg.Message) -> None:
    """An instance action for one compute host, after commit."""
    _send_after_commit(task, [request.to_dict()], msg.compute_queue(host))


def to_host_now(host: str, task: str, request: msg.Message) -> None:
    """A question for a compute host whose answer the caller waits for (nothing to commit)."""
    app.send_task(task, args=[request.to_dict()], queue=msg.compute_queue(host))
