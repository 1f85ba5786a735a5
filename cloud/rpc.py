"""Every message the control plane sends, in one place. Each is stored with the transaction that
causes it and published only after that transaction commits (cloud/outbox/relay.py), so a worker
never sees a row that is not there yet (or never will be), and a broker outage delays the message
instead of losing it or failing the request. Arguments are ids and contract dataclasses
(compute_agent.messages), JSON only."""

from __future__ import annotations

from cloud import errors
from cloud.outbox import relay
from compute_agent import messages as msg

from .celery import app


def schedule_instance(instance_uuid: str, request_id: str, *, wait_for_hosts: bool = True) -> None:
    relay.enqueue(msg.TASK_SCHEDULE_INSTANCE, [str(instance_uuid), request_id, wait_for_hosts],
                  msg.SCHEDULER_QUEUE)


def kick_drain(drain_uuid: str) -> None:
    """The next step of a host drain (cloud/scheduler/drains.py), after commit."""
    relay.enqueue(msg.TASK_KICK_DRAIN, [drain_uuid], msg.SCHEDULER_QUEUE)


# A control-plane task (no agent serves it), so named here rather than in the agent's contract.
TASK_EVACUATE = "scheduler.evacuate"


def evacuate(instance_uuid: str, request_id: str, *, source: str) -> None:
    """Rebuild a server of the dead host `source` elsewhere (cloud/scheduler/evacuations.py),
    after commit: the host recovery's evacuations, and the next try after one failed."""
    relay.enqueue(TASK_EVACUATE, [str(instance_uuid), request_id, source], msg.SCHEDULER_QUEUE)


def spawn(host: str, request: msg.SpawnRequest) -> None:
    relay.enqueue(msg.TASK_SPAWN, [request.to_dict()], msg.compute_queue(host))


def spawn_many(spawns: list[tuple[str, msg.SpawnRequest]]) -> None:
    """`spawn` for several (host, request) at once, stored by one INSERT."""
    relay.enqueue_many([(msg.TASK_SPAWN, [request.to_dict()], msg.compute_queue(host))
                        for host, request in spawns])


def destroy(host: str, request: msg.DestroyRequest) -> None:
    relay.enqueue(msg.TASK_DESTROY, [request.to_dict()], msg.compute_queue(host))


def to_host(host: str, task: str, request: msg.Message) -> None:
    """An instance operation for one compute host, after commit."""
    relay.enqueue(task, [request.to_dict()], msg.compute_queue(host))


def to_volume_host(host: str, task: str, request: msg.Message) -> None:
    """A volume operation for one volume host (compute_agent/messages/volumes.py), after commit."""
    relay.enqueue(task, [request.to_dict()], msg.volume_queue(host))


def to_host_now(host: str, task: str, request: msg.Message) -> None:
    """A question for a compute host whose answer the caller waits for (nothing to commit, and
    nothing worth keeping: an answer that comes late is of no use to anyone)."""
    try:
        app.send_task(task, args=[request.to_dict()], queue=msg.compute_queue(host),
                      retry=True, retry_policy=relay.PUBLISH_RETRY_POLICY)
    except Exception as exc:
        raise errors.ServiceUnavailable(
            "The message broker is unreachable; try again shortly."
        ) from exc
