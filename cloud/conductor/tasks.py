"""The conductor queue's tasks: parse the contract dataclass, set the request id, call services."""

from __future__ import annotations

import socket
from typing import Any

from celery import shared_task

from cloud.beat import (
    TASK_PURGE_EXPIRED_TOKENS,
    TASK_RECONCILE,
    TASK_RECOVER_UPLOADS,
    TASK_RELAY_OUTBOX,
)
from cloud.compute.hosts import record_heartbeat
from cloud.compute.models import CONDUCTOR_BINARY
from cloud.identity import tokens
from cloud.images import uploads
from cloud.logcontext import request_id_var
from cloud.outbox import relay
from compute_agent import messages as msg

from . import build_timeouts, host_reports, instance_events, power_sync, reconciler


@shared_task(name=msg.TASK_HOST_REPORT)
def host_report(data: dict[str, Any]) -> None:
    report = msg.HostReport.from_dict(data)
    host_reports.apply_host_report(report)
    power_sync.sync_power_states(report)
    host_reports.destroy_orphans(report)


@shared_task(name=msg.TASK_INSTANCE_EVENT)
def instance_event(data: dict[str, Any]) -> None:
    event = msg.InstanceEvent.from_dict(data)
    token = request_id_var.set(event.request_id)
    try:
        instance_events.apply_instance_event(event)
    finally:
        request_id_var.reset(token)


@shared_task(name=msg.TASK_CONDUCTOR_ALIVE)
def report_alive() -> None:
    record_heartbeat(socket.gethostname(), CONDUCTOR_BINARY, msg.CONDUCTOR_QUEUE)


@shared_task(name=msg.TASK_BUILD_TIMEOUTS)
def check_build_timeouts() -> None:
    build_timeouts.check_build_timeouts()


@shared_task(name=TASK_PURGE_EXPIRED_TOKENS)
def purge_expired_tokens() -> None:
    tokens.purge_expired()


@shared_task(name=TASK_RECONCILE)
def reconcile() -> None:
    reconciler.reconcile()


@shared_task(name=TASK_RELAY_OUTBOX)
def relay_outbox() -> None:
    relay.relay_pending()


@shared_task(name=TASK_RECOVER_UPLOADS)
def recover_abandoned_uploads() -> None:
    uploads.recover_abandoned_uploads()
