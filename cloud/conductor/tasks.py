"""The conductor queue's tasks: parse the contract dataclass, set the request id, call services.

A host's report is applied only if it came from that host (cloud.enrollment.report_senders)."""

from __future__ import annotations

import logging
import socket
from typing import Any

from celery import Task, shared_task
from django.db import transaction

from cloud.beat import (
    TASK_PURGE_EXPIRED_TOKENS,
    TASK_RECONCILE,
    TASK_RECOVER_UPLOADS,
    TASK_RELAY_OUTBOX,
    TASK_WATCH_HOSTS,
)
from cloud.compute import boot_volumes
from cloud.compute import guest_stats as guest_statistics
from cloud.compute.hosts import record_heartbeat
from cloud.compute.models import CONDUCTOR_BINARY
from cloud.enrollment import report_senders
from cloud.identity import tokens
from cloud.images import uploads
from cloud.logcontext import log_context
from cloud.outbox import relay
from compute_agent import messages as msg

from . import (
    build_timeouts,
    host_reports,
    host_watch,
    instance_events,
    power_sync,
    reconciler,
    volume_events,
)

log = logging.getLogger(__name__)


@shared_task(name=msg.TASK_HOST_REPORT, bind=True)
def host_report(self: Task, data: dict[str, Any]) -> None:
    report = msg.HostReport.from_dict(data)
    if not report_senders.accepts(self.request, msg.TASK_HOST_REPORT, data, report.host):
        return
    own = host_reports.own_instances(report)  # one read of them for the three steps
    host_reports.apply_host_report(report, own)
    power_sync.sync_power_states(report, own)
    host_reports.destroy_orphans(report, own)


@shared_task(name=msg.TASK_DOMAINS_CHANGED, bind=True)
def domains_changed(self: Task, data: dict[str, Any]) -> None:
    # Guests that stopped by themselves, or an agent older than 1.12 after an instance task.
    report = msg.DomainsChanged.from_dict(data)
    if not report_senders.accepts(self.request, msg.TASK_DOMAINS_CHANGED, data, report.host):
        return
    _apply_domains_changed(report)


def _apply_domains_changed(report: msg.DomainsChanged) -> None:
    # The same three steps as a heartbeat's, on the domains it lists alone.
    own = host_reports.own_instances(report)  # one read of them for the three steps
    host_reports.apply_domains_changed(report, own)
    power_sync.sync_power_states(report, own)
    host_reports.destroy_orphans(report, own)


@shared_task(name=msg.TASK_INSTANCE_EVENT, bind=True)
def instance_event(self: Task, data: dict[str, Any]) -> None:
    event = msg.InstanceEvent.from_dict(data)
    if not report_senders.accepts(self.request, msg.TASK_INSTANCE_EVENT, data, event.host):
        return
    with log_context(event.request_id, event.instance_uuid):
        changed = event.domains_changed
        if changed is not None and changed.host != event.host:
            # The sender was accepted for the event's host, and speaks for no other.
            log.warning("ignoring the domains of host %r sent with an event of host %r",
                        changed.host, event.host)
            changed = event.domains_changed = None
        if changed is None:
            instance_events.apply_instance_event(event)
            return
        _apply_event_and_domains(event, changed)


def _apply_event_and_domains(event: msg.InstanceEvent, changed: msg.DomainsChanged) -> None:
    """An event with the domains its task touched (contract 1.12), in one transaction: one commit
    per boot instead of two. The event first, as when they came as two messages.

    Were the domains' part to fail, the event is applied again alone: a report's failure must not
    lose the event (acks_late acks a failed task; nothing retries it), and every event handler is
    safe to run twice. Only the boot counter may then count one boot twice."""
    applied = False
    try:
        with transaction.atomic():
            if instance_events.apply_instance_event(event):
                return  # a boot's own domain, applied with its state move
            applied = True
            _apply_domains_changed(changed)
    except Exception:
        if not applied:
            raise
        log.exception("applying the domains reported with %s of %s failed; the event alone",
                      event.event, event.instance_uuid)
        event.domains_changed = None
        instance_events.apply_instance_event(event)


@shared_task(name=msg.TASK_VOLUME_HOST_REPORT, bind=True)
def volume_host_report(self: Task, data: dict[str, Any]) -> None:
    report = msg.VolumeHostReport.from_dict(data)
    if not report_senders.accepts(self.request, msg.TASK_VOLUME_HOST_REPORT, data, report.host):
        return
    volume_events.apply_volume_host_report(report)


@shared_task(name=msg.TASK_VOLUME_EVENT, bind=True)
def volume_event(self: Task, data: dict[str, Any]) -> None:
    event = msg.VolumeEvent.from_dict(data)
    if not report_senders.accepts(self.request, msg.TASK_VOLUME_EVENT, data, event.host):
        return
    with log_context(event.request_id, event.volume_id):
        volume_events.apply_volume_event(event)
        # A server waiting to boot from this volume is scheduled once all of its are made.
        boot_volumes.volume_changed(event.volume_id)


@shared_task(name=msg.TASK_GUEST_STATS, bind=True)
def guest_stats(self: Task, data: dict[str, Any]) -> None:
    report = msg.GuestStatsReport.from_dict(data)
    if not report_senders.accepts(self.request, msg.TASK_GUEST_STATS, data, report.host):
        return
    guest_statistics.record(report)


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
    volume_events.check_deadlines()
    boot_volumes.check_all_waiting()  # a volume event that never came


@shared_task(name=TASK_RELAY_OUTBOX)
def relay_outbox() -> None:
    relay.relay_pending()


@shared_task(name=TASK_RECOVER_UPLOADS)
def recover_abandoned_uploads() -> None:
    uploads.recover_abandoned_uploads()


@shared_task(name=TASK_WATCH_HOSTS)
def watch_hosts() -> None:
    host_watch.watch()
