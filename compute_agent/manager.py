"""The agent's service layer: what a compute host does when asked to spawn, destroy, or act on an
instance (start, stop, reboot, pause, unpause, suspend, resume, console output, snapshot, rebuild,
resize; rescue, shelve, backup, crash dump and NICs in compute_agent.guest_tasks), or to move one to another host (compute_agent.migration_tasks).

Celery tasks (compute_agent.worker) are thin wrappers over ComputeManager; everything here is
idempotent, because a message can be delivered twice (late acks) or overtaken by a later one:

- Work on one instance is serialised by a per-uuid lock.
- An instance destroyed by this process is remembered (a tombstone); a spawn that arrives after,
  or raced with, its destroy does nothing and reports `destroyed`, so no orphan domain appears.
  Tombstones live in memory only: after a restart the reconciler's domain sweep is the safety net.
- After `spawn_failed` nothing is left of the instance on this host, so the control plane may
  reschedule it elsewhere without two copies ever running.
- An instance action answers with its own event, or `action_failed` naming the action and why;
  the driver checks the real state first, so a repeated action is a success, not an error.
- A migration step answers with its own event or `action_failed` (action "migration"), each
  naming the migration; preparing an instance here lifts its tombstone, since a migration may
  bring it back to a host it left.

Each method that serves a Celery task says so with @host_task(task name); the worker registers
exactly those (see host_tasks), parsing each payload into the request type the method is annotated
with. Serving a new task therefore takes one decorated method here (or in the mixin of its family)
and its driver method.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable

from compute_agent import messages as msg
from compute_agent.drivers.base import DriverError
from compute_agent.guest_tasks import GuestTasks
from compute_agent.host_task import HostTask, declared_task, host_task
from compute_agent.locks import KeyedLocks
from compute_agent.logcontext import request_context
from compute_agent.manager_base import (
    TOMBSTONE_LIMIT,
    RecentIds,
    Tombstones,
    instance_key,
    readable,
)
from compute_agent.migration_tasks import MigrationTasks
from compute_agent.network.base import NetworkError
from compute_agent.network_tasks import NetworkTasks
from compute_agent.reporter import ReportError
from compute_agent.volume_tasks import VolumeTasks

# Re-exported: the manager's public names, wherever they are defined.
__all__ = [
    "TOMBSTONE_LIMIT",
    "ComputeManager",
    "HostTask",
    "KeyedLocks",
    "RecentIds",
    "Tombstones",
    "host_task",
    "host_tasks",
]

LOG = logging.getLogger(__name__)

# Nova's os-getConsoleOutput without a length returns everything; the log is capped anyway, and this
# keeps a message on the broker small.
MAX_CONSOLE_LINES = 1000


class ComputeManager(MigrationTasks, GuestTasks, VolumeTasks, NetworkTasks):
    """Everything a compute host does for the control plane, one @host_task method per task:
    spawn, destroy and the instance actions here, the migration steps in MigrationTasks, rescue,
    shelve, backups, crash dumps and NICs in GuestTasks, volumes in VolumeTasks, the shared machinery (locks, tombstones, reports) in ManagerBase."""

    @host_task(msg.TASK_SPAWN)
    def spawn(self, request: msg.SpawnRequest) -> msg.InstanceEvent:
        """Make the instance run here, report the outcome with its domain."""
        key = instance_key(request.instance_uuid)
        with request_context(request.request_id), self._locks.hold(key):
            event = self._spawn_locked(request, key)
            self.reporter.instance_event(self.with_domains(event))
        return event

    def _spawn_locked(self, request: msg.SpawnRequest, key: str) -> msg.InstanceEvent:
        if key in self.tombstones:
            LOG.info("instance %s was destroyed here already, not spawning it", key)
            return self._event(
                request.request_id,
                request.instance_uuid,
                msg.EVENT_DESTROYED,
                message="the instance was deleted before it could be spawned",
            )
        LOG.info("spawning instance %s (%s vcpus, %s MB)", key, request.vcpus, request.memory_mb)
        try:
            # The ports first: the domain's NICs are taps in bridges that must exist.
            self.plug(request.instance_uuid, request.networks)
            power_state = self.driver.spawn(request)
        except Exception as exc:
            LOG.exception("spawn of instance %s failed", key)
            details = traceback.format_exc()
            cleanup_error = self._clean_up_failed_spawn(request.instance_uuid)
            if cleanup_error:
                details += f"\nCleanup after the failure also failed: {cleanup_error}\n"
            return self._event(
                request.request_id,
                request.instance_uuid,
                msg.EVENT_SPAWN_FAILED,
                message=readable(exc),
                details=details,
            )
        LOG.info("instance %s spawned, power state %s", key, power_state)
        return self._event(
            request.request_id, request.instance_uuid, msg.EVENT_SPAWNED, power_state=power_state
        )

    def _clean_up_failed_spawn(self, instance_uuid: str) -> str:
        """Remove whatever the failed spawn left; return the cleanup's own error, if any."""
        try:
            self.driver.destroy(instance_uuid)
        except Exception as exc:
            LOG.exception("cleanup of failed instance %s failed", instance_uuid)
            return readable(exc)
        return self.unplug_quietly(instance_uuid)

    # The contract has no "destroy failed" event, so a destroy the hypervisor refused is run
    # again too; meanwhile the tombstone already stops any re-spawn.
    @host_task(msg.TASK_DESTROY, retry_for=(DriverError, NetworkError, ReportError),
               max_retries=8)
    def destroy(self, request: msg.DestroyRequest) -> msg.InstanceEvent:
        """Remove the instance's domain (a missing one is success), report it with the domain gone.

        A DriverError (or a NetworkError of unplugging its ports) propagates so that the caller
        can retry: there is no "destroy failed" event in the contract, and destroying again is
        always safe.
        """
        key = instance_key(request.instance_uuid)
        with request_context(request.request_id), self._locks.hold(key):
            # Tombstone first: even if the hypervisor fails now, no later spawn may recreate it.
            self.tombstones.add(key)
            LOG.info("destroying instance %s", key)
            self.driver.destroy(request.instance_uuid)
            # After the domain: its taps are gone, so nothing is cut off that still runs.
            self.network.unplug(request.instance_uuid)
            event = self._event(request.request_id, request.instance_uuid, msg.EVENT_DESTROYED)
            self.reporter.instance_event(self.with_domains(event))
        return event

    # --- instance actions -------------------------------------------------------------------

    @host_task(msg.TASK_START)
    def start(self, request: msg.PowerRequest) -> msg.InstanceEvent:
        return self._power(request, msg.ACTION_START, msg.EVENT_STARTED, self.driver.start)

    @host_task(msg.TASK_STOP)
    def stop(self, request: msg.PowerRequest) -> msg.InstanceEvent:
        return self._power(
            request, msg.ACTION_STOP, msg.EVENT_STOPPED,
            lambda uuid: self.driver.stop(uuid, max(0, request.timeout)),
        )

    @host_task(msg.TASK_PAUSE)
    def pause(self, request: msg.PowerRequest) -> msg.InstanceEvent:
        return self._power(request, msg.ACTION_PAUSE, msg.EVENT_PAUSED, self.driver.pause)

    @host_task(msg.TASK_UNPAUSE)
    def unpause(self, request: msg.PowerRequest) -> msg.InstanceEvent:
        return self._power(request, msg.ACTION_UNPAUSE, msg.EVENT_UNPAUSED, self.driver.unpause)

    @host_task(msg.TASK_SUSPEND)
    def suspend(self, request: msg.PowerRequest) -> msg.InstanceEvent:
        return self._power(request, msg.ACTION_SUSPEND, msg.EVENT_SUSPENDED, self.driver.suspend)

    @host_task(msg.TASK_RESUME)
    def resume(self, request: msg.PowerRequest) -> msg.InstanceEvent:
        return self._power(request, msg.ACTION_RESUME, msg.EVENT_RESUMED, self.driver.resume)

    @host_task(msg.TASK_REBOOT)
    def reboot(self, request: msg.RebootRequest) -> msg.InstanceEvent:
        reboot_type = (request.reboot_type or msg.REBOOT_SOFT).upper()

        def operation() -> dict[str, str]:
            if reboot_type not in (msg.REBOOT_SOFT, msg.REBOOT_HARD):
                raise ValueError(f"reboot type must be SOFT or HARD, not {request.reboot_type!r}")
            spawn = request.spawn if reboot_type == msg.REBOOT_HARD else None
            if spawn is not None:
                if instance_key(spawn.instance_uuid) != instance_key(request.instance_uuid):
                    raise ValueError("the reboot's spawn request is for another instance")
                # Its ports first, as for a spawn: a host that rebooted lost its bridges.
                self.plug(request.instance_uuid, spawn.networks)
                if self.driver.power_state(request.instance_uuid) == msg.POWER_NOSTATE:
                    # The host lost the domain (libvirt's test driver forgets them when the
                    # agent restarts): made again, on the root disk it kept if there is one.
                    LOG.warning("instance %s has no domain here; hard reboot re-creates it",
                                request.instance_uuid)
                    return {"power_state": self.driver.spawn(spawn)}
            state = self.driver.reboot(
                request.instance_uuid,
                hard=reboot_type == msg.REBOOT_HARD,
                timeout=max(0, request.timeout),
            )
            return {"power_state": state}

        return self._act(
            request.request_id, request.instance_uuid, msg.ACTION_REBOOT, msg.EVENT_REBOOTED,
            operation,
        )

    @host_task(msg.TASK_REBUILD)
    def rebuild(self, request: msg.SpawnRequest) -> msg.InstanceEvent:
        def operation() -> dict[str, str]:
            self.plug(request.instance_uuid, request.networks)
            return {"power_state": self.driver.rebuild(request)}

        return self._act(
            request.request_id, request.instance_uuid, msg.ACTION_REBUILD, msg.EVENT_REBUILT,
            operation,
        )

    @host_task(msg.TASK_RESIZE)
    def resize(self, request: msg.SpawnRequest) -> msg.InstanceEvent:
        """A resize or its revert: the request carries the sizes to end up with."""
        def operation() -> dict[str, str]:
            self.plug(request.instance_uuid, request.networks)
            return {"power_state": self.driver.resize(request,
                                                      stop_timeout=msg.DEFAULT_STOP_TIMEOUT)}

        return self._act(
            request.request_id, request.instance_uuid, msg.ACTION_RESIZE, msg.EVENT_RESIZED,
            operation,
        )

    def _power(
        self,
        request: msg.PowerRequest,
        action: str,
        success: str,
        method: Callable[[str], str],
    ) -> msg.InstanceEvent:
        return self._act(
            request.request_id, request.instance_uuid, action, success,
            lambda: {"power_state": method(request.instance_uuid)},
        )

    @host_task(msg.TASK_CONSOLE_OUTPUT)
    def console_output(self, request: msg.ConsoleOutputRequest) -> msg.InstanceEvent:
        length = request.length
        if length is None or length < 0 or length > MAX_CONSOLE_LINES:
            length = MAX_CONSOLE_LINES

        def operation() -> dict[str, str]:
            output = self.driver.console_output(request.instance_uuid, length)
            return {
                "power_state": self.driver.power_state(request.instance_uuid),
                "output": output,
            }

        return self._act(
            request.request_id, request.instance_uuid, msg.ACTION_CONSOLE_OUTPUT,
            msg.EVENT_CONSOLE_OUTPUT, operation,
        )

    @host_task(msg.TASK_SNAPSHOT)
    def snapshot(self, request: msg.SnapshotRequest) -> msg.InstanceEvent:
        """Copy the root disk to a scratch file, PUT it to the image API, remove the copy."""

        def operation() -> dict[str, str]:
            self.upload_root_disk(request)
            return {
                "power_state": self.driver.power_state(request.instance_uuid),
                "image_id": request.image_id,
            }

        return self._act(
            request.request_id, request.instance_uuid, msg.ACTION_SNAPSHOT,
            msg.EVENT_SNAPSHOT_UPLOADED, operation,
        )

    def sweep_image_cache(self) -> list[str]:
        """Drop cached images nothing here needs; never raises (it runs from the heartbeat)."""
        try:
            return self.driver.sweep_image_cache()
        except Exception:
            LOG.exception("image cache sweep on %s failed", self.host)
            return []


def host_tasks(manager_class: type[ComputeManager] = ComputeManager) -> dict[str, HostTask]:
    """Every task the manager class serves (its @host_task methods), by task name."""
    tasks: dict[str, HostTask] = {}
    for attribute in dir(manager_class):
        task = declared_task(getattr(manager_class, attribute))
        if task is None:
            continue
        if task.name in tasks:
            raise TypeError(
                f"{manager_class.__name__} serves {task.name} twice: "
                f"{tasks[task.name].method_name} and {task.method_name}"
            )
        tasks[task.name] = task
    return tasks
