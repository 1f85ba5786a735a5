"""The scheduler queue's tasks: parse, set the request id for the logs, call the manager."""

from __future__ import annotations

import socket

from celery import shared_task

from cloud import rpc
from cloud.compute.hosts import record_heartbeat
from cloud.compute.models import SCHEDULER_BINARY
from cloud.logcontext import log_context
from compute_agent import messages as msg

from . import decision_metrics, drains, evacuations, manager


@shared_task(name=msg.TASK_SCHEDULE_INSTANCE)
def schedule_instance(instance_uuid: str, request_id: str, wait_for_hosts: bool = True) -> None:
    with log_context(request_id, instance_uuid), decision_metrics.timed():
        manager.schedule_instance(instance_uuid, request_id, wait_for_hosts=wait_for_hosts)


@shared_task(name=msg.TASK_SCHEDULER_ALIVE)
def report_alive() -> None:
    record_heartbeat(socket.gethostname(), SCHEDULER_BINARY, msg.SCHEDULER_QUEUE)


@shared_task(name=msg.TASK_KICK_DRAIN)
def kick_drain(drain_uuid: str) -> None:
    drains.kick(drain_uuid)


@shared_task(name=rpc.TASK_EVACUATE)
def evacuate(instance_uuid: str, request_id: str, source: str) -> None:
    with log_context(request_id, instance_uuid):
        evacuations.evacuate_for_recovery(instance_uuid, request_id, source)
