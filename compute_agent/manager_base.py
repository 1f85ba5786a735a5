"""What every role of ComputeManager shares: the host's identity, its driver and reporter, the
per-instance locks and tombstones, and the one way an instance action is run and reported.

ComputeManager (compute_agent.manager) is assembled from this base and one mixin per family of
host tasks (compute_agent.migration_tasks for moves between hosts), as the libvirt driver is from
its role mixins; each @host_task method still lives on the assembled class, so the worker's task
list is derived from ComputeManager alone.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from compute_agent import host_load
from compute_agent import messages as msg
from compute_agent.domain_xml import canonical_uuid
from compute_agent.drivers.base import Driver
from compute_agent.locks import KeyedLocks
from compute_agent.logcontext import request_context
from compute_agent.network.base import NetworkDriver
from compute_agent.network.usermode import UserModeDriver
from compute_agent.reporter import Reporter

LOG = logging.getLogger(__name__)

# Uuids are never reused, so the bound exists only to cap memory on a long-lived host; it is far
# above how many destroys can race with a spawn still in flight.
TOMBSTONE_LIMIT = 100_000
MIGRATION_IDS_LIMIT = 10_000


class RecentIds:
    """A set of ids, oldest dropped first beyond `limit`; safe across worker threads."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._lock = threading.Lock()
        self._ids: OrderedDict[str, None] = OrderedDict()

    def add(self, key: str) -> None:
        with self._lock:
            self._ids[key] = None
            self._ids.move_to_end(key)
            while len(self._ids) > self._limit:
                self._ids.popitem(last=False)

    def discard(self, key: str) -> None:
        with self._lock:
            self._ids.pop(key, None)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._ids


class Tombstones(RecentIds):
    """Uuids destroyed by this process: a spawn or action that arrives after the destroy does
    nothing. Only a migration preparing the instance here again lifts one."""

    def __init__(self, limit: int = TOMBSTONE_LIMIT) -> None:
        super().__init__(limit)


def instance_key(instance_uuid: str) -> str:
    """The key of an instance's lock and tombstone: two spellings of one uuid share both."""
    try:
        return canonical_uuid(instance_uuid)
    except ValueError:
        return instance_uuid


def readable(exc: BaseException) -> str:
    text = str(exc).strip()
    return text or type(exc).__name__


class ManagerBase:
    def __init__(
        self,
        host: str,
        driver: Driver,
        reporter: Reporter,
        *,
        host_ip: str = "127.0.0.1",
        migration_uri: str = "",
        tombstone_limit: int = TOMBSTONE_LIMIT,
        network: NetworkDriver | None = None,
    ) -> None:
        self.host = host
        self.driver = driver
        # The data plane: what a port needs on this host before a domain uses it. The domain's
        # NICs are what it says they are (a tap in a bridge, or qemu's user-mode NIC).
        self.network: NetworkDriver = network if network is not None else UserModeDriver()
        driver.nic_of = self.network.nic
        driver.name_nic = self.network.name_device
        self.reporter = reporter
        self.host_ip = host_ip
        self.migration_uri = migration_uri
        self.tombstones = Tombstones(tombstone_limit)
        # Migrations an ABORT_MIGRATION or FORCE_COMPLETE_MIGRATION named, by id: either may
        # arrive before its LIVE_MIGRATE starts (compute_agent.migration_tasks).
        self.cancelled_migrations = RecentIds(MIGRATION_IDS_LIMIT)
        self.forced_migrations = RecentIds(MIGRATION_IDS_LIMIT)
        self._locks = KeyedLocks()
        # When the host booted (host_load.boot_time): read from /proc by each heartbeat, and
        # reused by the reports after every task in between (a file read per spawn otherwise).
        # The host cannot reboot under a running agent.
        self._boot_time = 0.0

    def _event(
        self, request_id: str, instance_uuid: str, event: str, **fields: str
    ) -> msg.InstanceEvent:
        text_fields: dict[str, Any] = dict(fields)  # the event's text fields, by name
        return msg.InstanceEvent(
            request_id=request_id,
            instance_uuid=instance_uuid,
            host=self.host,
            event=event,
            **text_fields,
        )

    def _act(
        self,
        request_id: str,
        instance_uuid: str,
        action: str,
        success: str,
        operation: Callable[[], dict[str, str]],
        *,
        migration_id: str = "",
        revive: bool = False,
        on_failure: dict[str, str] | None = None,
    ) -> msg.InstanceEvent:
        """Run one instance action under the instance's lock and report how it went.

        `operation` returns the success event's fields (at least its power_state). Any exception
        becomes `action_failed`; only a report that cannot be sent propagates, so the task is
        retried (every action is safe to repeat). A step of a migration names it in every event
        (`migration_id`); with `revive` the instance's tombstone here is lifted first (a
        migration may bring an instance back to a host it left). `on_failure` are fields an
        `action_failed` carries besides the action and why (the port a failed plug was for).
        """
        key = instance_key(instance_uuid)
        with request_context(request_id), self._locks.hold(key):
            if revive:
                self.tombstones.discard(key)
            if key in self.tombstones:
                event = self._event(
                    request_id, instance_uuid, msg.EVENT_ACTION_FAILED, action=action,
                    message="the instance was deleted from this host", **(on_failure or {}),
                )
            else:
                event = self._run_action(request_id, instance_uuid, action, success, operation,
                                         on_failure or {})
            event.migration_id = migration_id
            self.reporter.instance_event(self.with_domains(event))
        return event

    def _run_action(
        self,
        request_id: str,
        instance_uuid: str,
        action: str,
        success: str,
        operation: Callable[[], dict[str, str]],
        on_failure: dict[str, str],
    ) -> msg.InstanceEvent:
        LOG.info("%s of instance %s", action, instance_uuid)
        try:
            fields = operation()
        except Exception as exc:
            LOG.exception("%s of instance %s failed", action, instance_uuid)
            fields = {**on_failure, "action": action, "message": readable(exc)}
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

    # --- ports

    def plug(self, instance_uuid: str, ports: list[msg.NetworkInfo]) -> None:
        """Make the instance's ports ready on this host; before its domain is defined or started
        (a NetworkError fails the step that needed them)."""
        if ports:
            self.network.plug(instance_uuid, ports)

    def unplug_quietly(self, instance_uuid: str) -> str:
        """Remove what the instance's ports needed here, after its domain went; the error, if
        any (logged), for steps that must not fail because of it."""
        try:
            self.network.unplug(instance_uuid)
        except Exception as exc:
            LOG.exception("unplugging the ports of %s failed", instance_uuid)
            return readable(exc)
        return ""

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
            migration_uri=self.migration_uri,
            boot_time=self._read_boot_time(),
            load_average=host_load.load_average(),
            network_driver=self.network.name,
        )

    def _read_boot_time(self) -> float:
        self._boot_time = host_load.boot_time()
        return self._boot_time

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

    def domains_changed(self, instance_uuids: Sequence[str]) -> msg.DomainsChanged | None:
        """The domains a task (or guests stopping by themselves) touched, as the host's report
        would list them: what a task costs does not grow with the guests the host runs. The
        heartbeat's whole HostReport still follows. None when they cannot be read (logged)."""
        try:
            return msg.DomainsChanged(host=self.host,
                                      domains=self.driver.domain_states(instance_uuids),
                                      boot_time=self._boot_time or self._read_boot_time())
        except Exception:
            LOG.exception("could not read domains %s of %s", ", ".join(instance_uuids), self.host)
            return None

    def with_domains(self, event: msg.InstanceEvent) -> msg.InstanceEvent:
        """The event that ends a task, carrying the domain it touched (contract 1.12): one report
        instead of the event and a DomainsChanged right after it. Read under the instance's lock,
        so it is the state the task left, not one a later task made."""
        event.domains_changed = self.domains_changed([event.instance_uuid])
        return event

    def send_domains_changed(self, instance_uuids: Sequence[str]) -> msg.DomainsChanged | None:
        """Report the domains alone (guests that stopped by themselves; no event goes with them).
        Never raises, as send_host_report."""
        report = self.domains_changed(instance_uuids)
        if report is None:
            return None
        try:
            self.reporter.domains_changed(report)
        except Exception:
            LOG.exception("could not report domains %s of %s", ", ".join(instance_uuids),
                          self.host)
            return None
        return report
