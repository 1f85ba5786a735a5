"""Instance HA on a live host: a running guest that its host reports dead is started again there.

power_sync.py asks about every settled instance of the reporting host (no task, changed longer ago
than the grace period). One that should be running (vm_state ACTIVE) is restarted when its host
reports its domain

    crashed     its qemu process died (killed, out of memory, a qemu bug)
    gone        no domain at all: the host lost it (libvirt's test driver forgets its domains when
                its agent restarts; a host reinstalled)
    shut down   only when the host booted after the instance last changed: the guest did not
                power itself off, the host went down under it (Nova's
                resume_guests_state_on_host_boot). A guest that shut itself down on a host that
                kept running stays SHUTOFF, as in Nova; a stopped server stays stopped.

A restart is the registry's hard reboot, begun under the instance's row lock through the same
compare-and-swap a user's takes, so a redelivered or concurrent report starts nothing twice. Its
request carries the whole guest (guest_operations.reboot_request): a host without the domain
defines it again on the disks it kept. An InstanceFault says what happened and an InstanceAction
"reboot" (request id req-recover-<cause>-…) records it.

The budget: at most KUMO_GUEST_RESTART_BUDGET restarts within KUMO_GUEST_RESTART_WINDOW seconds.
Every restart of a crashed guest counts (a guest that keeps crashing must not be restarted for
ever); of the others only those that failed, since a domain the host lost and got back is no
fault of the guest's (a developer restarting `make run` on the test driver). Past the budget the
instance gets what it got before instance HA: SHUTOFF, or ERROR when its domain is gone, with a
fault saying that recovery gave up.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from cloud import errors, rpc
from cloud.compute import action_records, states
from cloud.compute.guest_operations import reboot_request
from cloud.compute.models import Instance, InstanceAction, InstanceFault, Migration
from cloud.compute.operations import REGISTRY
from cloud.compute.transitions import begin
from cloud.identity.context import RequestContext
from compute_agent import messages as msg

log = logging.getLogger(__name__)

# Why a guest is restarted; each is also a word of its restart's request id.
CRASHED = "crashed"
GONE = "gone"
HOST_BOOTED = "hostboot"

# What an attempt came to.
RESTARTING = "restarting"  # the hard reboot is under way
GAVE_UP = "gave up"  # the budget is spent: the caller applies the report as it did before HA
LEFT_ALONE = "left alone"  # it changed meanwhile, is being moved, or its host is not up

REQUEST_PREFIX = "req-recover-"
EVENT_RECOVERY = "conductor_guest_recovery"
GONE_MESSAGE = "The instance's domain is gone from its host."

_RESTARTING = {
    CRASHED: "The guest's qemu process died; restarting it on {host} (attempt {n} of {budget}).",
    GONE: "The instance's domain is gone from its host; re-creating it on {host} "
          "(attempt {n} of {budget}).",
    HOST_BOOTED: "Host {host} rebooted under the running guest; starting it again "
                 "(attempt {n} of {budget}).",
}
_GAVE_UP = {
    CRASHED: "The guest's qemu process died again; it is left shut off after {used} restarts "
             "within {window} s.",
    GONE: GONE_MESSAGE,
    HOST_BOOTED: "Host {host} rebooted under the guest and it could not be started again; it is "
                 "left shut off.",
}


# A host's whole report, or only the domains a task touched: both name the host, its boot time
# and domains.
Report = msg.HostReport | msg.DomainsChanged


@dataclass(frozen=True)
class Fault:
    message: str
    details: str = ""


def cause_of(instance: Instance, power: str, report: Report) -> str | None:
    """Why the instance, which the report shows in `power`, should be restarted; None if not."""
    if instance.vm_state != states.ACTIVE:
        return None
    if power == msg.POWER_CRASHED:
        return CRASHED
    if power == msg.POWER_NOSTATE:
        return GONE
    if power == msg.POWER_SHUTDOWN and host_booted_since(report, instance.updated_at):
        return HOST_BOOTED
    return None


def host_booted_since(report: Report, when: datetime) -> bool:
    """The reporting host booted after `when` (an unknown boot time says no)."""
    return report.boot_time > 0 and datetime.fromtimestamp(report.boot_time, UTC) > when


def restart(instance: Instance, cause: str, report: Report) -> str:
    """Begin the hard reboot that restarts the guest on the report's host, within the budget;
    RESTARTING, GAVE_UP or LEFT_ALONE."""
    budget = settings.KUMO_GUEST_RESTART_BUDGET
    request_id = f"{REQUEST_PREFIX}{cause}-{uuid.uuid4().hex[:12]}"
    with transaction.atomic():
        row = Instance.objects.select_for_update(no_key=True).filter(
            pk=instance.pk, deleted=False, host=report.host, vm_state=states.ACTIVE,
            task_state__isnull=True, updated_at=instance.updated_at,
        ).first()
        if row is None or _moving(row):
            return LEFT_ALONE
        used = restarts_used(row)
        if used >= budget:
            return GAVE_UP
        ctx = RequestContext(user_id=str(row.user_id), user_name="",
                             project_id=str(row.project_id), project_name=None,
                             roles=("admin",), request_id=request_id)
        try:
            row = begin(ctx, row, REGISTRY["reboot_hard"])
        except errors.Conflict as exc:
            log.info("instance %s not restarted: %s", row.uuid, exc)
            return LEFT_ALONE
        why = _RESTARTING[cause].format(host=report.host, n=used + 1, budget=budget)
        InstanceFault.objects.create(instance=row, code=500, message=why[:255], host=report.host,
                                     details=f"reported {instance.power_state} before, "
                                             f"{_power_seen(report, row)} now")
        action_records.record_event(str(row.uuid), EVENT_RECOVERY, action_records.SUCCESS,
                                    host=report.host, details=why)
        rpc.to_host(report.host, msg.TASK_REBOOT, reboot_request(row, request_id, hard=True))
    log.warning("instance %s: %s", instance.uuid, why)
    return RESTARTING


def gave_up(instance: Instance, cause: str, report: Report) -> Fault:
    """The fault of an instance whose restarts ran out."""
    used = restarts_used(instance)
    window = int(settings.KUMO_GUEST_RESTART_WINDOW)
    message = _GAVE_UP[cause].format(host=report.host, used=used, window=window)
    return Fault(message, f"Instance HA gave up: {used} restarts within {window} s on "
                          f"{report.host} (KUMO_GUEST_RESTART_BUDGET "
                          f"{settings.KUMO_GUEST_RESTART_BUDGET}).")


def restarts_used(instance: Instance) -> int:
    """The budget spent: restarts of the guest begun within the window that were of a crashed
    guest, or failed."""
    since = timezone.now() - timedelta(seconds=settings.KUMO_GUEST_RESTART_WINDOW)
    return InstanceAction.objects.filter(
        Q(request_id__startswith=f"{REQUEST_PREFIX}{CRASHED}-")
        | Q(message=action_records.ERROR),
        instance_id=instance.pk, request_id__startswith=REQUEST_PREFIX, start_time__gte=since,
    ).count()


def _moving(instance: Instance) -> bool:
    return Migration.objects.filter(instance_id=instance.pk,
                                    status__in=states.MIGRATION_IN_PROGRESS).exists()


def _power_seen(report: Report, instance: Instance) -> str:
    for domain in report.domains:
        if domain.uuid == str(instance.uuid):
            return domain.power_state
    return "no domain"
