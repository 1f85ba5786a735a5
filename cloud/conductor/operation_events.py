"""Applying a compute host's report that an operation finished (or failed).

Each report finishes the task it belongs to with one conditional UPDATE on (instance, host, task
state): a redelivered or stale report matches nothing and changes nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from cloud import events
from cloud.compute import (
    action_records,
    backups,
    evacuation,
    server_interfaces,
    server_volumes,
    shelving,
    states,
)
from cloud.compute.claims import release, resize_claim
from cloud.compute.guest_operations import console_key
from cloud.compute.models import Flavor, Instance, InstanceFault
from cloud.compute.operations import REGISTRY
from cloud.images.models import Image
from compute_agent import messages as msg

log = logging.getLogger(__name__)

# Derived from the operations registry: which running tasks each success report finishes, and the
# vm_state each task ends in (None: the one it started from).
# An operation with no task of its own (a crash dump) has its report recorded and nothing else.
FINISHES: dict[str, set[str]] = {}
_DONE_BY_TASK: dict[str, str | None] = {}
for _op in REGISTRY.values():
    if _op.finished_by:
        FINISHES.setdefault(_op.finished_by, set())
    if _op.finished_by and _op.task_state:
        FINISHES[_op.finished_by].add(_op.task_state)
        _DONE_BY_TASK[_op.task_state] = _op.done_vm_state
# A shelve whose host let the guest go at once (KUMO_SHELVED_OFFLOAD_TIME 0) ends offloaded.
FINISHES[msg.EVENT_SHELVE_OFFLOADED].add(states.SHELVING)
# A start whose domain was gone is carried out as a hard reboot (guest_operations.start).
FINISHES[msg.EVENT_REBOOTED].add(states.POWERING_ON)
_ALL_ACTION_TASKS = set(_DONE_BY_TASK)
# The request id of the reports the reconciler applies for a host that never sent them (its
# failures say "the host did not answer", not "the host said it failed").
RECONCILE_REQUEST_PREFIX = "req-reconcile-"
# Tasks whose failure leaves an image that will never receive its data.
_IMAGE_TASKS = {states.IMAGE_SNAPSHOT, states.IMAGE_BACKUP, states.SHELVING}


def apply_success(event: msg.InstanceEvent) -> None:
    tasks = FINISHES[event.event]
    if not tasks:
        action_records.record_event(event.instance_uuid, f"compute_{event.event}",
                                    action_records.SUCCESS, host=event.host, finish_action=True)
        return
    with transaction.atomic():
        row = (
            Instance.objects.select_for_update(no_key=True)
            .filter(uuid=event.instance_uuid, host=event.host, deleted=False, task_state__in=tasks)
            .first()
        )
        if row is None:
            log.info("ignoring %s for %s: no such task running there", event.event, event.instance_uuid)
            return
        changes = {"task_state": None, "power_state": event.power_state, "updated_at": timezone.now()}
        done = _DONE_BY_TASK[row.task_state]
        if done is not None:
            changes["vm_state"] = done
        if event.event == msg.EVENT_REBUILT:
            changes["launched_at"] = timezone.now()
        changes.update(_particular_outcome(event, row))
        Instance.objects.filter(pk=row.pk, task_state=row.task_state).update(**changes)
        events.instance_changed(event.instance_uuid)
        log.info("instance %s: %s on %s", event.instance_uuid, event.event, event.host)
        action_records.record_event(event.instance_uuid, f"compute_{event.event}", action_records.SUCCESS,
                             host=event.host, finish_action=True)


def _particular_outcome(event: msg.InstanceEvent, row: Instance) -> dict[str, Any]:
    """What an operation's success changes besides its task and vm_state."""
    if event.event == msg.EVENT_SHELVE_OFFLOADED:
        # Nothing of it is left on the host: its claim goes, it has no host until unshelved.
        release(str(row.uuid))
        server_interfaces.mark_ports(str(row.uuid), server_interfaces.PORT_DOWN)
        return {"vm_state": states.SHELVED_OFFLOADED, "host": None, "node": None,
                "power_state": msg.POWER_NOSTATE, "console_port": None, "console_socket": ""}
    if event.event == msg.EVENT_BACKUP_UPLOADED:
        backups.rotate(str(row.uuid), event.image_id, row.backup_rotation)
        return {"backup_rotation": None}
    if event.event == msg.EVENT_INTERFACE_ATTACHED and event.port_id:
        server_interfaces.mark_ports(str(row.uuid), server_interfaces.PORT_ACTIVE, event.port_id)
    if event.event == msg.EVENT_INTERFACE_DETACHED:
        server_interfaces.release_detached(str(row.uuid), event.port_id)
    if event.event == msg.EVENT_VOLUME_ATTACHED:
        server_volumes.attached(str(row.uuid), event.volume_id)
    if event.event == msg.EVENT_VOLUME_DETACHED:
        server_volumes.detached(str(row.uuid), event.volume_id)
    if event.event == msg.EVENT_UNSHELVED:
        return shelving.drop_shelved_image(str(row.uuid))
    if row.task_state == states.REBUILD_SPAWNING:
        # An evacuation: done once the new host runs it (a stopped server is stopped again).
        return evacuation.finish(row)
    if event.event == msg.EVENT_REBUILT and event.power_state == msg.POWER_SHUTDOWN:
        # A stopped server is rebuilt stopped (the host shut it down again), as in Nova.
        return {"vm_state": states.STOPPED}
    return {}


def apply_failure(event: msg.InstanceEvent) -> None:
    if event.action == msg.ACTION_CONSOLE_OUTPUT:
        cache.set(console_key(event.request_id), {"error": event.message or "no console"}, 120)
        return
    if event.action == msg.ACTION_TRIGGER_CRASH_DUMP:
        # No task to end (Nova holds none for it): the action's record says it failed.
        action_records.record_event(event.instance_uuid, f"compute_{event.action}",
                                    action_records.ERROR, host=event.host, details=event.message,
                                    finish_action=True)
        return
    with transaction.atomic():
        row = (
            Instance.objects.select_for_update(no_key=True)
            .filter(uuid=event.instance_uuid, host=event.host, deleted=False,
                    task_state__in=_ALL_ACTION_TASKS)
            .first()
        )
        if row is None:
            return
        changes = {"task_state": None, "power_state": event.power_state, "updated_at": timezone.now()}
        if row.task_state == states.RESIZE_MIGRATING and row.old_flavor_snapshot:
            # Back to the flavor it had: the claim shrinks again, the server keeps running as before.
            old = row.old_flavor_snapshot
            changes.update(
                flavor=Flavor.objects.filter(flavorid=old.get("id")).first(),
                flavor_snapshot=old, old_flavor_snapshot=None, vcpus=old["vcpus"],
                memory_mb=old["ram"], root_gb=old["disk"], ephemeral_gb=old.get("ephemeral", 0),
            )
            resize_claim(str(row.uuid), old["vcpus"], old["ram"],
                         old["disk"] + old.get("ephemeral", 0))
        if row.task_state in _IMAGE_TASKS:
            Image.objects.filter(
                properties__instance_uuid=str(row.uuid), status__in=["queued", "saving"]
            ).update(status="killed")
            changes.update({"shelved_image_id": ""} if row.task_state == states.SHELVING
                           else {"backup_rotation": None})
        if row.task_state == states.REBUILD_SPAWNING:
            # The new host could not rebuild it: back to its dead host, and another host tried.
            changes.update(evacuation.fail(
                row, event.message or "the rebuild failed",
                reported=not event.request_id.startswith(RECONCILE_REQUEST_PREFIX)))
        if row.task_state == states.INTERFACE_ATTACHING and event.port_id:
            # The host could not plug it in: the port is the caller's again, bound to nothing.
            server_interfaces.unbind(str(row.uuid), event.port_id)
        if row.task_state == states.VOLUME_ATTACHING:
            # The guest never got it: the volume is available again, as it was.
            server_volumes.attach_failed(str(row.uuid), event.volume_id, event.message)
        if row.task_state == states.VOLUME_DETACHING:
            # The guest kept it: still attached, in use.
            server_volumes.detach_failed(str(row.uuid), event.volume_id)
        Instance.objects.filter(pk=row.pk, task_state=row.task_state).update(**changes)
        events.instance_changed(event.instance_uuid)
        InstanceFault.objects.create(
            instance=row, code=500, message=(event.message or f"{event.action} failed")[:255],
            details=event.details, host=event.host,
        )
        log.warning("instance %s: %s failed on %s: %s", event.instance_uuid, event.action,
                    event.host, event.message)
        action_records.record_event(event.instance_uuid, f"compute_{event.action}", action_records.ERROR,
                             host=event.host, details=event.message, finish_action=True)


def apply_console_output(event: msg.InstanceEvent) -> None:
    cache.set(console_key(event.request_id), {"output": event.output}, 120)
