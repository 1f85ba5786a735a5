"""The agent's service layer: what a compute host does when asked to spawn or destroy.

Celery tasks (compute_agent.worker) are thin wrappers over ComputeManager; everything here is
idempotent, because a message can be delivered twice (late acks) or overtaken by a later one:

- Work on one instance is serialised by a per-uuid lock.
- An instance destroyed by this process is remembered (a tombstone); a spawn that arrives after,
  or raced with, its destroy does nothing and reports `destroyed`, so no orphan domain appears.
  Tombstones live in memory only: after a restart the reconciler's domain sweep is the safety net.
- After `spawn_failed` nothing is left of the instance on this host, so the control plane may
  reschedule it elsewhere without two copies ever running.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import traceback
from collections import OrderedDict
from collections.abc import Iterator

from compute_agent import messages as msg
from compute_agent.domain_xml import canonical_uuid
from compute_agent.drivers.base import Driver
from compute_agent.logcontext import request_context
from compute_agent.reporter import Reporter

LOG = logging.getLogger(__name__)

# Uuids are never reused, so the bound exists only to cap memory on a long-lived host; it is far
# above how many destroys can race with a spawn still in flight.
TOMBSTONE_LIMIT = 100_000


class KeyedLocks:
    """One lock per key, made on first use and forgotten when nobody holds or awaits it."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, tuple[threading.Lock, int]] = {}

    @contextlib.contextmanager
    def hold(self, key: str) -> Iterator[None]:
        with self._guard:
            lock, users = self._locks.get(key, (threading.Lock(), 0))
            self._locks[key] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._guard:
                lock, users = self._locks[key]
                if users == 1:
                    del self._locks[key]
                else:
                    self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        with self._guard:
            return len(self._locks)


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
