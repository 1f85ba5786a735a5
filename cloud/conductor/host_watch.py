"""The host watch: silent compute hosts are fenced, then their HA servers are evacuated.

Beat runs `watch()` every KUMO_HOST_WATCH_INTERVAL seconds (cloud/beat.py). Each pass opens a
failure for every enabled host silent for KUMO_HOST_FAILURE_AFTER seconds and moves each open
failure one step (cloud/compute/host_failures.py draws the statuses):

- Nothing is fenced while more than half the hosts are silent at once, or none reports: then the
  likelier cause is the control plane's side (a broker outage, a conductor that was stopped), and
  fencing every host would turn it into a real outage. The failure says so and waits.
- Fencing is the host's driver (cloud/compute/fencing.py). A failure is retried every
  KUMO_FENCE_RETRY_INTERVAL seconds, KUMO_FENCE_ATTEMPTS times, then waits for a person; the
  manual driver waits for one at once. A person confirms by forcing the service down.
- Once fenced the host is forced down (its servers show host_status DOWN, operators may evacuate
  them), its routers move to live hosts, and its HA servers are evacuated, at most
  KUMO_EVACUATE_CONCURRENCY at a time, each followed through its evacuation record until done or
  failed; the others are left for an operator.
- A host that reports again closes its failure: before it was fenced nothing moved (cleared);
  after, it rejoins: the forced-down flag the watch set is lifted, the domains of its evacuated
  servers are destroyed by its first report (host_reports.destroy_orphans) instead of started,
  and routers that moved away are removed from it.

Every step is a compare-and-swap on the failure's status, so two conductors watching at once
never fence twice or evacuate a server twice; a conductor killed in the middle leaves a failure
the next pass carries on (a fence that never answered is failed after its timeout).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from cloud import events, rpc
from cloud.compute import evacuation, fencing, network_plane, states
from cloud.compute import host_failures as hf
from cloud.compute.models import COMPUTE_BINARY, HostFailure, Instance, InstanceFault, Service

log = logging.getLogger(__name__)


def watch(now: datetime | None = None) -> dict[str, str]:
    """One pass; the status of every open failure afterwards, by host."""
    now = now or timezone.now()
    services = {s.host: s for s in Service.objects.filter(binary=COMPUTE_BINARY)}
    watched = [s for s in services.values() if s.last_seen_up is not None and not s.disabled]
    silent = {s.host for s in watched if hf.silent(s, now)}
    for host in silent:
        _open(host, services[host])
    guard = _guard(len(silent), len(watched))
    for failure in list(hf.open_failures()):
        service = services.get(failure.host)
        if service is None:  # the host was removed from the cloud: nothing left to watch
            _move(failure, [failure.status], hf.CLEARED, closed=True,
                  message="The host's service was deleted.")
            continue
        try:
            _step(failure, service, now, guard)
        except Exception:  # one host's trouble (a bad setting, a driver bug) must not stop the rest
            log.exception("host watch: the failure of %s could not move on", failure.host)
    return dict(hf.open_failures().values_list("host", "status"))


def _guard(silent: int, watched: int) -> str:
    if silent and (silent == watched or silent * 2 > watched):
        return (f"{silent} of {watched} hosts are silent at once: the control plane or the "
                "broker is the likelier cause, so no host is fenced until most report again.")
    return ""


def _open(host: str, service: Service) -> None:
    try:
        with transaction.atomic():
            if hf.open_failure(host) is not None:
                return
            HostFailure.objects.create(
                host=host, status=hf.SUSPECTED, last_heartbeat=service.last_seen_up,
                was_forced_down=service.forced_down,
                fencing_driver=fencing.driver_for(host).name,
                message=f"{host} stopped reporting; it is fenced before anything moves.")
    except IntegrityError:
        return  # another watcher opened it first
    log.warning("host %s is silent since %s: failure opened", host, service.last_seen_up)
    events.host_moves_changed(host)


def _confirmed(failure: HostFailure, service: Service) -> bool:
    """A person's word that the host is off: the dashboard's Confirm, or forced_down set since
    the failure opened (a flag left from maintenance or an earlier failure confirms nothing)."""
    return failure.confirmed_by_operator or (service.forced_down and not failure.was_forced_down)


def _back(failure: HostFailure, service: Service, now: datetime) -> bool:
    """Whether the host reports again. Before the fence one report is enough (nothing moved);
    after it, two reports seen by two passes: the conductor stamps a report when it applies it,
    so one that waited in the queue while the host was fenced would look like a live host."""
    seen = service.last_seen_up
    if seen is None or hf.silent(service, now):
        return False
    if failure.fenced_at is None:
        return seen > (failure.last_heartbeat or failure.detected_at)
    if seen <= failure.fenced_at:
        return False
    if failure.seen_after_fence is None:
        HostFailure.objects.filter(pk=failure.pk, seen_after_fence__isnull=True).update(
            seen_after_fence=seen)
        return False
    return seen > failure.seen_after_fence


def _step(failure: HostFailure, service: Service, now: datetime, guard: str) -> None:
    status = failure.status
    if status != hf.FENCING and _back(failure, service, now):
        _returned(failure, service)
        return
    if status == hf.SUSPECTED:
        if guard:
            if failure.message != guard:
                _move(failure, [hf.SUSPECTED], hf.SUSPECTED, message=guard)
            return
        _fence(failure, service)
    elif status == hf.FENCING:
        # A power-off and its verify command may each take the whole timeout.
        longest = settings.KUMO_FENCE_TIMEOUT * (1 + bool(settings.KUMO_FENCE_VERIFY_COMMAND))
        if now - failure.updated_at > timedelta(seconds=longest + 30):
            # The process that fenced died: the fence is tried again.
            _move(failure, [hf.FENCING], hf.FENCE_FAILED, attempt=failure.fence_attempts,
                  message="The fencing attempt was lost (its conductor stopped).")
    elif status == hf.FENCE_FAILED:
        due = now - failure.updated_at >= timedelta(seconds=settings.KUMO_FENCE_RETRY_INTERVAL)
        if due and not guard:
            _fence(failure, service)
    elif status == hf.AWAITING_CONFIRMATION:
        if _confirmed(failure, service):
            _move(failure, [hf.AWAITING_CONFIRMATION], hf.FENCED, fenced_at=timezone.now(),
                  message=f"An operator confirmed that {failure.host} is off.")
            _recover(failure, service)
    elif status == hf.FENCED:
        _recover(failure, service)
    elif status == hf.RECOVERING:
        _follow(failure)


def _fence(failure: HostFailure, service: Service) -> None:
    if _confirmed(failure, service):
        # Forced down by a person since it went silent: their word is the confirmation.
        if _move(failure, [hf.SUSPECTED, hf.FENCE_FAILED], hf.FENCED, fenced_at=timezone.now(),
                 message=f"{failure.host} was already forced down by an operator."):
            _recover(failure, service)
        return
    attempt = failure.fence_attempts + 1
    if not _move(failure, [hf.SUSPECTED, hf.FENCE_FAILED], hf.FENCING, fence_attempts=attempt,
                 message=f"Fencing {failure.host} (attempt {attempt})."):
        return
    driver = fencing.driver_for(failure.host)
    try:
        result = driver.fence(failure.host)
    except Exception as exc:  # noqa: BLE001  (a driver bug must not leave it stuck in fencing)
        # Its type only: the text of a driver's error may hold what its command was given.
        log.error("fencing driver %s failed on %s: %s", driver.name, failure.host,
                  type(exc).__name__)
        result = fencing.FenceResult(fencing.FAILED,
                                     f"The {driver.name} driver failed ({type(exc).__name__}).")
    log.warning("fencing %s (%s, attempt %d): %s", failure.host, driver.name, attempt,
                result.outcome)
    if result.outcome == fencing.CONFIRMED:
        if _move(failure, [hf.FENCING], hf.FENCED, attempt=attempt, fenced_at=timezone.now(),
                 message=result.message):
            _recover(failure, service)
    elif result.outcome == fencing.WAITING:
        _move(failure, [hf.FENCING], hf.AWAITING_CONFIRMATION, attempt=attempt,
              message=result.message)
    elif attempt >= settings.KUMO_FENCE_ATTEMPTS:
        _move(failure, [hf.FENCING], hf.AWAITING_CONFIRMATION, attempt=attempt, message=(
            f"Fencing failed {attempt} times ({result.message}) Confirm that {failure.host} is "
            f"off (`openstack compute service set --down {failure.host} nova-compute`) and its "
            "guests are recovered; nothing moves until then."))
    else:
        _move(failure, [hf.FENCING], hf.FENCE_FAILED, attempt=attempt,
              message=f"{result.message} Trying again in {settings.KUMO_FENCE_RETRY_INTERVAL:g} s.")


def _recover(failure: HostFailure, service: Service) -> None:
    """The host is off: list its guests and start recovering (the move to recovering comes
    first, so that two watchers never both do what follows, and a watcher killed halfway leaves
    a failure whose next pass finishes it)."""
    guests = hf.guests_of(failure.host)
    ha = sum(1 for g in guests if g["ha"])
    if not _move(failure, [hf.FENCED], hf.RECOVERING, guests=guests,
                 forced_down_by_watch=failure.forced_down_by_watch or not service.forced_down,
                 message=f"Fenced. Recovering {ha} HA server(s) of {len(guests)}."):
        return
    _follow(failure)


def _take_over(host: str) -> None:
    """What a fenced host hands to the others, each pass until done: it is forced down (its
    servers show host_status DOWN, the scheduler skips it) and its routers run elsewhere."""
    Service.objects.filter(host=host, binary=COMPUTE_BINARY, forced_down=False).update(
        forced_down=True)
    network_plane.move_routers_off(host)


def _follow(failure: HostFailure) -> None:
    """Start the next evacuations and note how the started ones went."""
    _take_over(failure.host)
    with transaction.atomic():
        row = HostFailure.objects.select_for_update(no_key=True).filter(
            pk=failure.pk, status=hf.RECOVERING).first()
        if row is None:
            return
        guests = [dict(g) for g in row.guests]
        for part in guests:
            if part["state"] == hf.EVACUATING:
                _note(row, part)
        busy = sum(1 for g in guests if g["state"] == hf.EVACUATING)
        for part in guests:
            if part["state"] == hf.PENDING and busy < settings.KUMO_EVACUATE_CONCURRENCY:
                part["state"] = hf.EVACUATING
                part["message"] = "evacuating"
                _ask(row, part)
                busy += 1
        left = [g for g in guests if g["state"] in (hf.PENDING, hf.EVACUATING)]
        changes: dict[str, Any] = {"guests": guests}
        if not left:
            done = sum(1 for g in guests if g["state"] == hf.DONE)
            failed = sum(1 for g in guests if g["state"] == hf.FAILED)
            changes.update(status=hf.RECOVERED, recovered_at=timezone.now(), message=(
                f"Recovered {done} server(s), {failed} failed; the host stays forced down until "
                "it reports again."))
        if guests != row.guests or "status" in changes:
            HostFailure.objects.filter(pk=row.pk).update(updated_at=timezone.now(), **changes)
            events.host_moves_changed(row.host)


# How long a guest's evacuation may go unstarted (its request lost, or refused while the server
# was busy with a task) before it is asked for again.
_ASK_AGAIN_AFTER = timedelta(seconds=30)


def _ask(failure: HostFailure, part: dict) -> None:
    part["since"] = timezone.now().isoformat()
    rpc.evacuate(part["id"], f"req-recovery-{str(failure.uuid)[:8]}", source=failure.host)


def _note(failure: HostFailure, part: dict) -> None:
    """How the evacuation of one guest stands, from its server and its evacuation records."""
    instance = Instance.objects.filter(uuid=part["id"]).first()
    if instance is None or instance.deleted:
        part.update(state=hf.DONE, message="deleted meanwhile")
        return
    moved = instance.migrations.filter(migration_type=evacuation.EVACUATION,
                                       created_at__gte=failure.detected_at)
    latest = moved.order_by("-id").first()
    if latest is not None and latest.status == states.MIGRATION_DONE and instance.task_state in (
            None, states.POWERING_OFF):
        part.update(state=hf.DONE, dest=instance.host or "", message=f"running on {instance.host}")
        return
    if latest is not None and latest.status == states.MIGRATION_ACCEPTED:
        part.update(dest=latest.dest_compute or "", message=f"rebuilding on {latest.dest_compute}")
        return
    if latest is not None and instance.host != failure.host:
        # Its rebuild did not finish on the new host, which may still run it: left there
        # (evacuation.fail) for that host's own failure, or a person, to settle.
        part.update(state=hf.FAILED, dest=instance.host or "",
                    message=latest.fault or "the rebuild did not finish")
        return
    if evacuation.gave_up(instance, failure.host):
        part.update(state=hf.FAILED, message=latest.fault if latest else "evacuation failed")
        return
    refused = InstanceFault.objects.filter(
        instance=instance, message__startswith=evacuation.NOT_POSSIBLE,
        created_at__gte=failure.detected_at).order_by("-id").first()
    if refused is not None and (latest is None or refused.created_at > latest.updated_at):
        part.update(state=hf.FAILED, message=refused.message)
        return
    since = datetime.fromisoformat(part.get("since") or timezone.now().isoformat())
    if timezone.now() - since > _ASK_AGAIN_AFTER:
        # Not started (the request lost with a scheduler, or the server was busy): ask again.
        _ask(failure, part)


def _returned(failure: HostFailure, service: Service) -> None:
    """The host reports again: its failure closes, and it rejoins if it had been fenced."""
    if failure.fenced_at is None:
        if _move(failure, [failure.status], hf.CLEARED, closed=True,
                 message=f"{failure.host} reported again before it was fenced; nothing moved."):
            log.warning("host %s reports again: failure cleared", failure.host)
        return
    with transaction.atomic():
        row = HostFailure.objects.select_for_update(no_key=True).filter(
            pk=failure.pk, closed_at__isnull=True).first()
        if row is None:
            return
        guests = [dict(g) for g in row.guests]
        for part in guests:
            if part["state"] == hf.PENDING:
                part.update(state=hf.LEFT, message="its host came back before it was evacuated")
        still = "" if row.forced_down_by_watch else (
            " It stays forced down, as an operator set it: unset it to schedule servers there.")
        if not _move(row, [row.status], hf.REJOINED, closed=True, guests=guests,
                     message=(f"{row.host} reported again and rejoined; the domains of its "
                              f"evacuated servers are removed from it.{still}")):
            return
        if row.forced_down_by_watch:
            Service.objects.filter(pk=service.pk).update(forced_down=False)
        network_plane.forget_routers_elsewhere(row.host)
    log.warning("host %s reports again after fencing: rejoined", failure.host)


def _move(failure: HostFailure, from_statuses: list[str], to_status: str, *,
          closed: bool = False, attempt: int | None = None, **changes: Any) -> bool:
    """The failure's compare-and-swap: False (nothing changed) from any other status (or, with
    `attempt`, once another fencing attempt began: a late answer lands on no one else's)."""
    if closed:
        changes["closed_at"] = timezone.now()
    rows = HostFailure.objects.filter(pk=failure.pk, status__in=from_statuses,
                                      closed_at__isnull=True)
    if attempt is not None:
        rows = rows.filter(fence_attempts=attempt)
    moved = rows.update(
        status=to_status, updated_at=timezone.now(), **changes)
    if moved:
        failure.status = to_status
        for name, value in changes.items():
            setattr(failure, name, value)
        events.host_moves_changed(failure.host)
    return bool(moved)
