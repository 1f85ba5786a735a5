"""The steps a compute host takes to move an instance to another host (contract 1.3; the order
of the steps is in compute_agent.messages, above TASK_PREPARE_MIGRATION), as a mixin of
ComputeManager.

Each step takes a MigrationRequest and answers with one InstanceEvent naming the migration: its
own event, or `action_failed` with action "migration" and the reason in words; then a host report.
Every step runs under the instance's lock and checks real state first, so a redelivered message
finds the work done and succeeds again:

- PREPARE_MIGRATION (destination) lifts the instance's tombstone here (a migration may bring it
  back to a host it left), then makes its files ready; a domain of it already here is left alone.
- LIVE_MIGRATE (source) reports MIGRATION_PROGRESS about every second while the copy runs, then
  LIVE_MIGRATED with the guest's power state on the destination. Redelivered after it moved, it
  finds the guest running there. On any failure the guest runs on here, untouched.
- ABORT_MIGRATION and FORCE_COMPLETE_MIGRATION (source) act on the LIVE_MIGRATE in progress and
  report nothing of their own: its outcome is their answer (failed, "cancelled"; or live-migrated).
  Either may overtake the LIVE_MIGRATE it names, so both are remembered by migration id and
  applied when the copy starts.
- MIGRATE_DISK (source, cold) shuts the guest down and sends its disk; FINISH_MIGRATION
  (destination) starts it there from the request's SpawnRequest (new sizes for a resize), and
  leaves it shut down when the request says it was off (power_on);
  REVERT_MIGRATION (source) starts the guest the source kept. Confirming is a DESTROY on the
  source, reverting a DESTROY on the destination first.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from compute_agent import messages as msg
from compute_agent.drivers.base import DriverError, MigrationCancelled
from compute_agent.host_task import host_task
from compute_agent.logcontext import request_context
from compute_agent.manager_base import ManagerBase, instance_key

LOG = logging.getLogger(__name__)

CANCELLED = "the live migration was cancelled"


class MigrationTasks(ManagerBase):
    def _step(
        self,
        request: msg.MigrationRequest,
        success: str,
        operation: Callable[[], dict[str, str]],
        *,
        revive: bool = False,
    ) -> msg.InstanceEvent:
        return self._act(
            request.request_id, request.instance_uuid, msg.ACTION_MIGRATION, success, operation,
            migration_id=request.migration_id, revive=revive,
        )

    def _check_role(self, expected_host: str, role: str) -> None:
        if expected_host and expected_host != self.host:
            raise DriverError(
                f"this host is {self.host}, but the migration's {role} is {expected_host}"
            )

    @staticmethod
    def _spawn_of(request: msg.MigrationRequest) -> msg.SpawnRequest:
        spawn = request.spawn
        if spawn is None:
            raise DriverError("the migration request does not describe the instance (no spawn)")
        if instance_key(spawn.instance_uuid) != instance_key(request.instance_uuid):
            raise DriverError(
                f"the migration request describes instance {spawn.instance_uuid}, "
                f"not {request.instance_uuid}"
            )
        return spawn

    @staticmethod
    def _dest_uri(request: msg.MigrationRequest) -> str:
        if not request.dest_uri:
            raise DriverError(
                f"no way to reach {request.dest_host or 'the destination'}: it reports no "
                "migration URI"
            )
        return request.dest_uri

    @host_task(msg.TASK_PREPARE_MIGRATION)
    def prepare_migration(self, request: msg.MigrationRequest) -> msg.InstanceEvent:
        def operation() -> dict[str, str]:
            self._check_role(request.dest_host, "destination")
            spawn = self._spawn_of(request)
            # The bridges and rules before the guest arrives: a live guest's NICs must find
            # their bridges the moment it lands.
            self.plug(request.instance_uuid, spawn.networks)
            self.driver.prepare_migration(spawn, live=request.live)
            return {"power_state": self.driver.power_state(request.instance_uuid)}

        # A request meant for another host must not lift this host's tombstone.
        revive = request.dest_host in ("", self.host)
        return self._step(request, msg.EVENT_MIGRATION_PREPARED, operation, revive=revive)

    @host_task(msg.TASK_LIVE_MIGRATE)
    def live_migrate(self, request: msg.MigrationRequest) -> msg.InstanceEvent:
        instance_uuid = request.instance_uuid
        migration_id = request.migration_id
        applied: set[str] = set()

        def on_progress(figures: dict[str, int]) -> None:
            # An abort or force-complete that came before the copy could be seen is applied now.
            for marks, what, act in (
                (self.cancelled_migrations, "abort", self.driver.abort_migration),
                (self.forced_migrations, "force-complete", self.driver.force_complete_migration),
            ):
                if migration_id and migration_id in marks and what not in applied:
                    try:
                        if act(instance_uuid):
                            applied.add(what)
                    except Exception:
                        LOG.warning("%s of migration %s failed", what, migration_id,
                                    exc_info=True)
            self._report_progress(request, figures)

        def operation() -> dict[str, str]:
            self._check_role(request.source_host, "source")
            dest_uri = self._dest_uri(request)
            if (migration_id in self.cancelled_migrations
                    and self.driver.power_state(instance_uuid) != msg.POWER_NOSTATE):
                raise MigrationCancelled(f"{CANCELLED} before it started")
            state = self.driver.live_migrate(instance_uuid, dest_uri, on_progress=on_progress)
            # The guest left: its ports here go (a failure to remove them is logged, not the
            # migration's failure; the guest runs on the destination either way).
            self.unplug_quietly(instance_uuid)
            return {"power_state": state}

        return self._step(request, msg.EVENT_LIVE_MIGRATED, operation)

    def _report_progress(self, request: msg.MigrationRequest, figures: dict[str, int]) -> None:
        event = self._event(request.request_id, request.instance_uuid,
                            msg.EVENT_MIGRATION_PROGRESS)
        event.migration_id = request.migration_id
        event.progress = dict(figures)
        try:
            self.reporter.instance_event(event)
        except Exception:
            # A lost progress figure is not worth stopping the copy for; the next one follows.
            LOG.warning("could not report the progress of migration %s", request.migration_id,
                        exc_info=True)

    # ABORT and FORCE_COMPLETE take no instance lock, on purpose: the LIVE_MIGRATE they act on
    # holds it for as long as the copy runs, so waiting for it would mean acting only once there
    # is nothing left to act on. They touch neither the instance's definition nor its files, only
    # the hypervisor's migration job, which the driver and libvirt serialise themselves. The
    # worker runs at least two tasks at once (compute_agent.worker), so one is free for them.

    @host_task(msg.TASK_ABORT_MIGRATION)
    def abort_migration(self, request: msg.MigrationRequest) -> bool:
        """Cancel the live migration in progress; return whether one was running here."""
        with request_context(request.request_id):
            if request.migration_id:
                self.cancelled_migrations.add(request.migration_id)
            return self._on_job("abort", request, self.driver.abort_migration)

    @host_task(msg.TASK_FORCE_COMPLETE_MIGRATION)
    def force_complete_migration(self, request: msg.MigrationRequest) -> bool:
        """Pause the guest so that its live migration converges; return whether one was running
        here."""
        with request_context(request.request_id):
            if request.migration_id:
                self.forced_migrations.add(request.migration_id)
            return self._on_job("force-complete", request, self.driver.force_complete_migration)

    def _on_job(
        self, what: str, request: msg.MigrationRequest, act: Callable[[str], bool]
    ) -> bool:
        try:
            acted = act(request.instance_uuid)
        except Exception:
            # The LIVE_MIGRATE still ends and reports one way or the other.
            LOG.exception("%s of migration %s failed", what, request.migration_id)
            return False
        if acted:
            LOG.info("%s of migration %s of %s requested", what, request.migration_id,
                     request.instance_uuid)
        else:
            LOG.info("no live migration of %s in progress here; %s of migration %s is kept for "
                     "when it starts", request.instance_uuid, what, request.migration_id)
        return acted

    @host_task(msg.TASK_MIGRATE_DISK)
    def migrate_disk(self, request: msg.MigrationRequest) -> msg.InstanceEvent:
        def operation() -> dict[str, str]:
            self._check_role(request.source_host, "source")
            state = self.driver.migrate_disk(
                request.instance_uuid, self._dest_uri(request),
                stop_timeout=max(0, request.stop_timeout),
            )
            return {"power_state": state}

        return self._step(request, msg.EVENT_DISK_MIGRATED, operation)

    @host_task(msg.TASK_FINISH_MIGRATION)
    def finish_migration(self, request: msg.MigrationRequest) -> msg.InstanceEvent:
        def operation() -> dict[str, str]:
            self._check_role(request.dest_host, "destination")
            spawn = self._spawn_of(request)
            self.plug(request.instance_uuid, spawn.networks)
            state = self.driver.finish_migration(spawn)
            if not request.power_on and state != msg.POWER_SHUTDOWN:
                # Defined and started like any spawn, then off again at once: it was off.
                state = self.driver.stop(request.instance_uuid, 0)
            return {"power_state": state}

        return self._step(request, msg.EVENT_MIGRATION_FINISHED, operation)

    @host_task(msg.TASK_REVERT_MIGRATION)
    def revert_migration(self, request: msg.MigrationRequest) -> msg.InstanceEvent:
        def operation() -> dict[str, str]:
            self._check_role(request.source_host, "source")
            if request.spawn is not None:
                self.plug(request.instance_uuid, request.spawn.networks)
            return {"power_state": self.driver.start(request.instance_uuid)}

        return self._step(request, msg.EVENT_MIGRATION_REVERTED, operation)
