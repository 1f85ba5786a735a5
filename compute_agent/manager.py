"""The agent's service layer: what a compute host does when asked to spawn, destroy, or act on an
instance (start, stop, reboot, pause, unpause, suspend, resume, console output, snapshot, rebuild,
resize).

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

Each method that serves a Celery task says so with @host_task(task name); the worker registers
exactly those (see host_tasks), parsing each payload into the request type the method is annotated
with. Serving a new task therefore takes one decorated method here and its driver method.
"""

from __future__ import annotations

import inspect
import logging
import os
import tempfile
import threading
import traceback
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar, get_type_hints

from compute_agent import image_transfer
from compute_agent import messages as msg
from compute_agent.domain_xml import canonical_uuid
from compute_agent.drivers.base import Driver, DriverError
from compute_agent.locks import KeyedLocks
from compute_agent.logcontext import request_context
from compute_agent.reporter import Reporter, ReportError

LOG = logging.getLogger(__name__)

# Nova's os-getConsoleOutput without a length returns everything; the log is capped anyway, and this
# keeps a message on the broker small.
MAX_CONSOLE_LINES = 1000

# Uuids are never reused, so the bound exists only to cap memory on a long-lived host; it is far
# above how many destroys can race with a spawn still in flight.
TOMBSTONE_LIMIT = 100_000


class Tombstones:
    """Uuids destroyed by this process, oldest dropped first beyond `limit`."""

    def __init__(self, limit: int = TOMBSTONE_LIMIT) -> None:
        self._limit = limit
        self._lock = threading.Lock()
        self._uuids: OrderedDict[str, None] = OrderedDict()

    def add(self, instance_uuid: str) -> None:
        with self._lock:
            self._uuids[instance_uuid] = None
            self._uuids.move_to_end(instance_uuid)
            while len(self._uuids) > self._limit:
                self._uuids.popitem(last=False)

    def __contains__(self, instance_uuid: object) -> bool:
        with self._lock:
            return instance_uuid in self._uuids


@dataclass(frozen=True)
class HostTask:
    """A Celery task the agent serves on its host queue: the ComputeManager method that runs it,
    the request its payload is parsed into, and when it is run again (with backoff)."""

    name: str
    request_type: type[msg.Message]
    method_name: str
    # Every host task is idempotent, so running it again is safe. A report that could not be
    # published is the one failure all of them retry: the rest they report themselves
    # (spawn_failed, action_failed).
    retry_for: tuple[type[Exception], ...] = (ReportError,)
    max_retries: int = 5


# Where host_task leaves its HostTask on the method it declares.
_HOST_TASK_ATTRIBUTE = "_kumo_host_task"

Method = TypeVar("Method", bound=Callable[..., object])


def host_task(
    name: str,
    *,
    retry_for: tuple[type[Exception], ...] = HostTask.retry_for,
    max_retries: int = HostTask.max_retries,
) -> Callable[[Method], Method]:
    """Declare that a ComputeManager method serves the Celery task `name` (a msg.TASK_* name).

    The method takes one request annotated with its compute_agent.messages type; the annotation is
    read now, so a method that lacks it is refused when its class is defined, not when a message
    arrives.
    """

    def declare(method: Method) -> Method:
        task = HostTask(
            name=name,
            request_type=_request_type(method),
            method_name=method.__name__,
            retry_for=retry_for,
            max_retries=max_retries,
        )
        setattr(method, _HOST_TASK_ATTRIBUTE, task)
        return method

    return declare


def _request_type(method: Callable[..., object]) -> type[msg.Message]:
    where = getattr(method, "__qualname__", repr(method))
    parameters = list(inspect.signature(method).parameters)[1:]  # the first is self
    if len(parameters) != 1:
        raise TypeError(f"host task {where} must take exactly one request, not {parameters}")
    try:
        hints = get_type_hints(method)
    except NameError as exc:
        raise TypeError(f"host task {where}: cannot resolve its annotations: {exc}") from exc
    request_type = hints.get(parameters[0])
    if not (isinstance(request_type, type) and issubclass(request_type, msg.Message)):
        raise TypeError(
            f"host task {where}: annotate its request with its compute_agent.messages type "
            f"(found {request_type!r})"
        )
    return request_type


def _instance_key(instance_uuid: str) -> str:
    # Two spellings of one uuid must share a lock and a tombstone.
    try:
        return canonical_uuid(instance_uuid)
    except ValueError:
        return instance_uuid


def _readable(exc: BaseException) -> str:
    text = str(exc).strip()
    return text or type(exc).__name__


class ComputeManager:
    def __init__(
        self,
        host: str,
        driver: Driver,
        reporter: Reporter,
        *,
        host_ip: str = "127.0.0.1",
        tombstone_limit: int = TOMBSTONE_LIMIT,
    ) -> None:
        self.host = host
        self.driver = driver
        self.reporter = reporter
        self.host_ip = host_ip
        self.tombstones = Tombstones(tombstone_limit)
        self._locks = KeyedLocks()

    def _event(
        self, request_id: str, instance_uuid: str, event: str, **fields: str
    ) -> msg.InstanceEvent:
        return msg.InstanceEvent(
            request_id=request_id,
            instance_uuid=instance_uuid,
            host=self.host,
            event=event,
            **fields,
        )

    @host_task(msg.TASK_SPAWN)
    def spawn(self, request: msg.SpawnRequest) -> msg.InstanceEvent:
        """Make the instance run here, report the outcome, then report the host."""
        key = _instance_key(request.instance_uuid)
        with request_context(request.request_id):
            with self._locks.hold(key):
                event = self._spawn_locked(request, key)
                self.reporter.instance_event(event)
            self.send_host_report()
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
                message=_readable(exc),
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
            return _readable(exc)
        return ""

    # The contract has no "destroy failed" event, so a destroy the hypervisor refused is run
    # again too; meanwhile the tombstone already stops any re-spawn.
    @host_task(msg.TASK_DESTROY, retry_for=(DriverError, ReportError), max_retries=8)
    def destroy(self, request: msg.DestroyRequest) -> msg.InstanceEvent:
        """Remove the instance's domain (a missing one is success), report it, report the host.

        A DriverError propagates so that the caller can retry: there is no "destroy failed" event
        in the contract, and destroying again is always safe.
        """
        key = _instance_key(request.instance_uuid)
        with request_context(request.request_id):
            with self._locks.hold(key):
                # Tombstone first: even if the hypervisor fails now, no later spawn may recreate it.
                self.tombstones.add(key)
                LOG.info("destroying instance %s", key)
                self.driver.destroy(request.instance_uuid)
                event = self._event(request.request_id, request.instance_uuid, msg.EVENT_DESTROYED)
                self.reporter.instance_event(event)
            self.send_host_report()
        return event

    # --- instance actions -------------------------------------------------------------------

    def _act(
        self,
        request_id: str,
        instance_uuid: str,
        action: str,
        success: str,
        operation: Callable[[], dict[str, str]],
    ) -> msg.InstanceEvent:
        """Run one instance action under the instance's lock and report how it went.

        `operation` returns the success event's fields (at least its power_state). Any exception
        becomes `action_failed`; only a report that cannot be sent propagates, so the task is
        retried (every action is safe to repeat).
        """
        key = _instance_key(instance_uuid)
        with request_context(request_id):
            with self._locks.hold(key):
                if key in self.tombstones:
                    event = self._event(
                        request_id, instance_uuid, msg.EVENT_ACTION_FAILED, action=action,
                        message="the instance was deleted from this host",
                    )
                else:
                    event = self._run_action(request_id, instance_uuid, action, success, operation)
                self.reporter.instance_event(event)
            self.send_host_report()
        return event

    def _run_action(
        self,
        request_id: str,
        instance_uuid: str,
        action: str,
        success: str,
        operation: Callable[[], dict[str, str]],
    ) -> msg.InstanceEvent:
        LOG.info("%s of instance %s", action, instance_uuid)
        try:
            fields = operation()
        except Exception as exc:
            LOG.exception("%s of instance %s failed", action, instance_uuid)
            fields = {"action": action, "message": _readable(exc)}
            try:
                fields["power_state"] = self.driver.power_state(instance_uuid)
            except Exception:
                # The state is a courtesy here; the failure is what must be reported.
                LOG.warning("power state of %s unknown after the failure", instance_uuid,
                            exc_info=True)
            return self._event(request_id, instance_uuid, msg.EVENT_ACTION_FAILED, **fields)
        LOG.info("%s of instance %s done, power state %s", action, instance_uuid,
                 fields.get("power_state"))
        return self._event(request_id, instance_uuid, success, **fields)

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
        return self._act(
            request.request_id, request.instance_uuid, msg.ACTION_REBUILD, msg.EVENT_REBUILT,
            lambda: {"power_state": self.driver.rebuild(request)},
        )

    @host_task(msg.TASK_RESIZE)
    def resize(self, request: msg.SpawnRequest) -> msg.InstanceEvent:
        """A resize or its revert: the request carries the sizes to end up with."""
        return self._act(
            request.request_id, request.instance_uuid, msg.ACTION_RESIZE, msg.EVENT_RESIZED,
            lambda: {
                "power_state": self.driver.resize(request, stop_timeout=msg.DEFAULT_STOP_TIMEOUT)
            },
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
            os.makedirs(self.driver.scratch_dir, mode=0o755, exist_ok=True)
            fd, target = tempfile.mkstemp(prefix="snapshot-", dir=self.driver.scratch_dir)
            os.close(fd)
            try:
                os.unlink(target)  # qemu-img makes the file itself
                self.driver.snapshot(request.instance_uuid, target)
                size = image_transfer.upload(request.upload_url, request.token, target)
            finally:
                if os.path.exists(target):
                    os.unlink(target)
            LOG.info("snapshot of %s uploaded as image %s (%d bytes)",
                     request.instance_uuid, request.image_id, size)
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

    # --- the host ---------------------------------------------------------------------------

    def host_report(self) -> msg.HostReport:
        info = self.driver.host_info()
        return msg.HostReport(
            host=self.host,
            hypervisor_type=info["hypervisor_type"],
            hypervisor_version=info["hypervisor_version"],
            hypervisor_hostname=info["hypervisor_hostname"],
            host_ip=self.host_ip,
            vcpus=info["vcpus"],
            memory_mb=info["memory_mb"],
            local_gb=info["local_gb"],
            cpu_info=info["cpu_info"],
            domains=self.driver.list_domains(),
        )

    def send_host_report(self) -> msg.HostReport | None:
        """Build and send a host report; on failure log it and return None.

        Never raises: the heartbeat sends another soon, and an instance's outcome must not be
        retried just because the report after it failed.
        """
        try:
            report = self.host_report()
            self.reporter.host_report(report)
        except Exception:
            LOG.exception("could not send the host report for %s", self.host)
            return None
        return report


def host_tasks(manager_class: type[ComputeManager] = ComputeManager) -> dict[str, HostTask]:
    """Every task the manager class serves (its @host_task methods), by task name."""
    tasks: dict[str, HostTask] = {}
    for attribute in dir(manager_class):
        task = getattr(getattr(manager_class, attribute), _HOST_TASK_ATTRIBUTE, None)
        if not isinstance(task, HostTask):
            continue
        if task.name in tasks:
            raise TypeError(
                f"{manager_class.__name__} serves {task.name} twice: "
                f"{tasks[task.name].method_name} and {task.method_name}"
            )
        tasks[task.name] = task
    return tasks
