"""A compute host's instance events, applied: a build that spawned, failed or was destroyed, and the
end of an operation (operation_events.py).

Every function is safe to run twice with the same input (Celery may redeliver): state moves are
conditional UPDATEs from the state the event expects, and anything else is a no-op.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from cloud import events, rpc
from cloud.compute import (
    action_records,
    boot_metrics,
    boot_volumes,
    server_interfaces,
    shelving,
    states,
)
from cloud.compute.claims import release
from cloud.compute.models import Instance, InstanceFault
from cloud.compute.servers import complete_delete
from cloud.ids import canonical_uuid
from compute_agent import messages as msg

from . import migration_events, operation_events

log = logging.getLogger(__name__)


def apply_instance_event(event: msg.InstanceEvent) -> bool:
    """Apply the event; True when its handler also applied the domains it carries (contract 1.12)
    so that nothing of them is left to do."""
    handlers: dict[str, Callable[[msg.InstanceEvent], bool | None]] = {
        msg.EVENT_SPAWNED: _spawned,
        msg.EVENT_SPAWN_FAILED: _spawn_failed,
        msg.EVENT_DESTROYED: _destroyed,
    }
    for name in operation_events.FINISHES:
        handlers[name] = operation_events.apply_success
    handlers[msg.EVENT_ACTION_FAILED] = operation_events.apply_failure
    handlers[msg.EVENT_CONSOLE_OUTPUT] = operation_events.apply_console_output
    handlers.update(migration_events.HANDLERS)
    if event.event == msg.EVENT_ACTION_FAILED and event.action == msg.ACTION_MIGRATION:
        handlers[msg.EVENT_ACTION_FAILED] = migration_events.failed
    handler = handlers.get(event.event)
    if handler is None:
        log.warning("ignoring unknown instance event %r for %s", event.event, event.instance_uuid)
        return False
    return bool(handler(event))


# The spawned event's state move, and in the same statement what the rest of the handler needs to
# know: the project (for the live update, which would otherwise read it after the commit), a shelve
# image to drop, whether any port is still to be marked ACTIVE and whether any volume is attached.
# A plain boot has none of the last three, so the handler asks nothing more of the database than
# this and the action's record (it asked four more queries through the ORM).
_SPAWNED_SQL = """
UPDATE compute_instance i
   SET vm_state = %(active)s, task_state = NULL, power_state = %(power)s,
       launched_at = %(now)s, updated_at = %(now)s,
       console_port = CASE WHEN %(console)s THEN %(port)s ELSE i.console_port END,
       console_socket = CASE WHEN %(console)s THEN %(socket)s ELSE i.console_socket END
 WHERE i.uuid = %(uuid)s AND NOT i.deleted AND i.task_state = %(spawning)s AND i.host = %(host)s
RETURNING i.project_id, i.shelved_image_id,
  EXISTS (SELECT 1 FROM network_port p
           WHERE p.device_id = %(device)s AND p.status <> %(port_active)s),
  EXISTS (SELECT 1 FROM compute_blockdevicemapping b
           WHERE b.instance_id = i.uuid AND b.attachment_id IS NOT NULL)"""


def _own_console(event: msg.InstanceEvent) -> tuple[int | None, str] | None:
    """The console port and socket of the spawned domain, when the domains the event carries are
    that domain alone (a spawn's): then the state move sets them, and nothing else of the domains
    is left to do (see _spawned). None otherwise."""
    changed = event.domains_changed
    if changed is None or len(changed.domains) != 1 or changed.host != event.host:
        return None
    [domain] = changed.domains
    if canonical_uuid(domain.uuid) != canonical_uuid(event.instance_uuid):
        return None
    return (domain.vnc_port if domain.vnc_port > 0 else None), domain.vnc_socket


def _became_active(event: msg.InstanceEvent, now: datetime,
                   console: tuple[int | None, str] | None) -> tuple[str, bool, bool, bool] | None:
    """Move a SPAWNING instance of this host to ACTIVE (with its console, if given); None when it
    was not one. Else its project, and whether it has a shelve image, ports to mark and attached
    volumes."""
    if connection.vendor != "postgresql":  # SQLite (the laptop demo): the same through the ORM
        extra = {} if console is None else {"console_port": console[0],
                                            "console_socket": console[1]}
        moved = Instance.objects.filter(
            uuid=event.instance_uuid, deleted=False, task_state=states.SPAWNING, host=event.host,
        ).update(vm_state=states.ACTIVE, task_state=None, power_state=event.power_state,
                 launched_at=now, updated_at=now, **extra)
        if not moved:
            return None
        project_id, shelved = Instance.objects.filter(uuid=event.instance_uuid).values_list(
            "project_id", "shelved_image_id").get()
        return str(project_id), bool(shelved), True, True
    with connection.cursor() as cursor:
        cursor.execute(_SPAWNED_SQL, {
            "active": states.ACTIVE, "power": event.power_state, "now": now,
            "uuid": event.instance_uuid, "spawning": states.SPAWNING, "host": event.host,
            "device": str(event.instance_uuid), "port_active": server_interfaces.PORT_ACTIVE,
            "console": console is not None, "port": console[0] if console else None,
            "socket": console[1] if console else "",
        })
        row = cursor.fetchone()
    if row is None:
        return None
    project_id, shelved, ports_to_mark, volumes = row
    return str(project_id), bool(shelved), bool(ports_to_mark), bool(volumes)


def _spawned(event: msg.InstanceEvent) -> bool:
    """True when the spawned domain the event carries was applied here too: a boot's spawned event
    with its own domain alone (contract 1.12). Its console is set by the state move; the rest of
    what a DomainsChanged does has nothing to do for it: the power sync leaves a row changed just
    now alone (KUMO_POWER_SYNC_GRACE), and a domain of the host's own live instance is no orphan."""
    console = _own_console(event)
    # No savepoint inside the transaction that also applies the spawn's domains (conductor.tasks):
    # nothing here catches an error, so a failure undoes the whole of it either way.
    with transaction.atomic(savepoint=False):
        became_active = _became_active(event, timezone.now(), console)
        if became_active is not None:
            project_id, shelved, ports_to_mark, volumes = became_active
            # An offloaded server unshelved: it runs from its own disk now.
            if shelved and (changes := shelving.drop_shelved_image(event.instance_uuid)):
                Instance.objects.filter(uuid=event.instance_uuid).update(**changes)
            else:
                boot_metrics.ended(boot_metrics.ACTIVE)
            if ports_to_mark:
                server_interfaces.mark_ports(event.instance_uuid, server_interfaces.PORT_ACTIVE)
            if volumes:
                boot_volumes.spawned(event.instance_uuid, event.host)  # its volumes are in use
            log.info("instance %s is active on %s", event.instance_uuid, event.host)
            events.instance_changed(event.instance_uuid, project_id=project_id)
            action_records.record_event(
                event.instance_uuid,
                action_records.EVENT_SPAWN,
                action_records.SUCCESS,
                host=event.host,
                finish_action=True,
            )
            return console is not None
        instance = Instance.objects.filter(uuid=event.instance_uuid).first()
        if (
            instance is not None
            and not instance.deleted
            and instance.task_state != states.DELETING
            and instance.host == event.host
        ):
            # A redelivered event for an instance already running there (or one a timeout put in
            # ERROR on this host, which a delete will clean up): nothing to do.
            return False
        # The instance is gone, going, or lives elsewhere now: the new domain has no owner.
        log.info("destroying domain %s on %s: its instance no longer wants it",
                 event.instance_uuid, event.host)
        rpc.destroy(
            event.host,
            msg.DestroyRequest(request_id=event.request_id, instance_uuid=event.instance_uuid),
        )
        return False


def _spawn_failed(event: msg.InstanceEvent) -> None:
    with transaction.atomic():
        instance = (
            Instance.objects.select_for_update(no_key=True)
            .filter(
                uuid=event.instance_uuid,
                deleted=False,
                task_state=states.SPAWNING,
                host=event.host,
            )
            .first()
        )
        if instance is None:
            return  # redelivered, or deleted meanwhile: the delete path owns it now
        release(str(instance.uuid))
        expected = {"uuid": instance.uuid, "task_state": states.SPAWNING, "host": event.host}
        if instance.retries < settings.KUMO_MAX_BUILD_RETRIES:
            log.warning("build of %s failed on %s, rescheduling: %s",
                        instance.uuid, event.host, event.message)
            Instance.objects.filter(**expected).update(
                retries=instance.retries + 1,
                tried_hosts=[*(instance.tried_hosts or []), event.host],
                host=None,
                node=None,
                task_state=states.SCHEDULING,
                updated_at=timezone.now(),
            )
            action_records.record_event(
                event.instance_uuid,
                action_records.EVENT_SPAWN,
                action_records.ERROR,
                host=event.host,
                details=f"{event.message} (rescheduling)",
                traceback=event.details or None,
            )
            rpc.schedule_instance(str(instance.uuid), event.request_id)
            return
        log.warning("build of %s failed on %s, giving up: %s",
                    instance.uuid, event.host, event.message)
        if instance.vm_state == states.BUILDING:
            boot_metrics.ended(boot_metrics.SPAWN_FAILED)
        events.instance_changed(event.instance_uuid)
        Instance.objects.filter(**expected).update(
            vm_state=states.ERROR,
            task_state=None,
            host=None,
            node=None,
            updated_at=timezone.now(),
        )
        InstanceFault.objects.create(
            instance=instance,
            code=500,
            message=(event.message or "Build of instance failed")[:255],
            details=event.details,
            host=event.host,
        )
        action_records.record_event(
            event.instance_uuid,
            action_records.EVENT_SPAWN,
            action_records.ERROR,
            host=event.host,
            details=event.message,
            traceback=event.details or None,
            finish_action=True,
        )


def _destroyed(event: msg.InstanceEvent) -> None:
    instance = Instance.objects.filter(uuid=event.instance_uuid).first()
    if instance is None or instance.deleted:
        return
    if instance.task_state != states.DELETING or instance.host not in (None, event.host):
        # An orphan domain we asked a host to remove (the instance lives on elsewhere).
        log.info("domain %s destroyed on %s; its instance stays", event.instance_uuid, event.host)
        return
    log.info("instance %s destroyed on %s", event.instance_uuid, event.host)
    complete_delete(event.instance_uuid)


