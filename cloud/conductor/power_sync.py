"""Power-state sync: what a host's hypervisor says about its domains, applied to the instances that
are not in the middle of a task.

A running guest whose qemu died, whose domain its host lost, or whose host rebooted under it is
restarted there (guest_recovery.py, within a budget). Otherwise, as in Nova, a guest that shut
itself down or crashed outside Kumo becomes SHUTOFF; one whose domain vanished becomes ERROR with a
fault; and otherwise only the recorded power state follows the hypervisor. Rows changed within the
grace period are left alone, because a heartbeat gathered just before an action finished may
arrive just after it (a guest that has run longer than that is seen at once).

A DomainsChanged (after a task, or guests that stopped by themselves) is applied to the instances
it lists alone: one it leaves out is not thereby gone.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from cloud import events
from cloud.compute import states
from cloud.compute.models import Instance, InstanceFault
from cloud.ids import canonical_uuid
from compute_agent import messages as msg

from . import guest_recovery

log = logging.getLogger(__name__)

_STOPPED_POWER = (msg.POWER_SHUTDOWN, msg.POWER_CRASHED)
# What the sync compares: a heartbeat reads every settled instance of its host, nearly all of
# which match, and loading whole rows (their JSON columns decoded) was most of its cost. A row
# that needs more loads it (a restart locks and reads its row afresh).
_COMPARED = ("vm_state", "power_state", "task_state", "updated_at", "host")


_UNSETTLED = (states.BUILDING, states.ERROR, states.DELETED)


def sync_power_states(report: msg.HostReport | msg.DomainsChanged,
                      own: list[Instance] | None = None) -> int:
    """Apply the report's domain states to this host's settled instances (of a DomainsChanged:
    those it lists); how many changed. `own`: the report's instances of this host already read
    (host_reports.own_instances, with _COMPARED's fields), which the same conditions narrow here
    instead of a query of their own."""
    grace = timedelta(seconds=getattr(settings, "KUMO_POWER_SYNC_GRACE", 20))
    seen = {d.uuid: d.power_state for d in report.domains}
    cutoff = timezone.now() - grace
    settled: Iterable[Instance]
    if own is not None:
        # Read with host=report.host and deleted=False already.
        settled = [i for i in own if i.task_state is None and i.updated_at < cutoff
                   and i.vm_state not in _UNSETTLED]
    else:
        query = Instance.objects.filter(
            host=report.host, deleted=False, task_state__isnull=True, updated_at__lt=cutoff,
        ).exclude(vm_state__in=_UNSETTLED).only(*_COMPARED)
        if isinstance(report, msg.DomainsChanged):
            query = query.filter(uuid__in=[u for u in map(canonical_uuid, seen) if u])
        settled = query
    changed = 0
    for instance in settled:
        power = seen.get(str(instance.uuid), msg.POWER_NOSTATE)
        fault: guest_recovery.Fault | None = None
        cause = guest_recovery.cause_of(instance, power, report)
        if cause is not None:
            outcome = guest_recovery.restart(instance, cause, report)
            if outcome != guest_recovery.GAVE_UP:
                changed += outcome == guest_recovery.RESTARTING
                continue
            fault = guest_recovery.gave_up(instance, cause, report)
        elif power == instance.power_state:
            continue
        changes: dict = {"power_state": power}
        if power == msg.POWER_NOSTATE and instance.vm_state == states.STOPPED:
            # A stopped server stays stopped (its host rebooted, or libvirt's test driver forgot
            # it): starting it defines the domain again on the disk it kept (guest_operations).
            pass
        elif power == msg.POWER_NOSTATE:
            changes["vm_state"] = states.ERROR
            fault = fault or guest_recovery.Fault(guest_recovery.GONE_MESSAGE)
        elif power in _STOPPED_POWER and instance.vm_state == states.ACTIVE:
            changes["vm_state"] = states.STOPPED
        with transaction.atomic():
            moved = Instance.objects.filter(
                pk=instance.pk, task_state__isnull=True, vm_state=instance.vm_state,
                power_state=instance.power_state,
            ).update(updated_at=timezone.now(), **changes)
            if moved and fault is not None and "vm_state" in changes:
                InstanceFault.objects.create(
                    instance=instance, code=500, host=report.host, message=fault.message[:255],
                    details=fault.details,
                )
            if moved:
                events.instance_changed(instance.pk)
        if moved:
            changed += 1
            log.warning("instance %s on %s: hypervisor says %s (was %s)", instance.uuid,
                        report.host, power, instance.power_state)
    return changed
