"""A migration's destination side before the guest arrives, and the live move itself.

The live copy is peer-to-peer: this host's libvirtd connects to the destination's and drives
both qemus (VIR_MIGRATE_PEER2PEER), copying memory and the root disk's own layer
(NON_SHARED_INC: the destination built the same overlay on its own cached image), and the domain
ends up defined there and gone from here (PERSIST_DEST, UNDEFINE_SOURCE). The call blocks for the
whole copy, so it runs in a thread of its own, outside the connection lock, while the caller's
thread reads the job's figures every PROGRESS_INTERVAL seconds; abortJob and the pause of a
force-complete come from other worker threads meanwhile. If the copy fails, libvirt leaves the
guest running here (and paused only if it was paused); a pause of ours is undone.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import libvirt

from compute_agent import messages as msg
from compute_agent.domain_xml import canonical_uuid, local_disk_targets
from compute_agent.drivers.base import DriverError, MigrationCancelled, ProgressCallback
from compute_agent.drivers.libvirt import peers
from compute_agent.drivers.libvirt.connection import (
    LibvirtBase,
    LiveMigrationJob,
    NoSuchInstance,
    T,
)
from compute_agent.drivers.libvirt.errors import error_text
from compute_agent.drivers.libvirt.power import WrongState
from compute_agent.drivers.libvirt.states import domain_power_state
from compute_agent.instance_disks import prepare_for_migration

LOG = logging.getLogger(__name__)


PROGRESS_INTERVAL = 1.0
# A copy still running after this long is aborted (Nova's completion timeout, for small guests);
# after an abort, libvirt gets ABORT_GRACE seconds to give the call back.
COMPLETION_TIMEOUT = 900.0
ABORT_GRACE = 60.0

LIVE_FLAGS = (
    libvirt.VIR_MIGRATE_LIVE
    | libvirt.VIR_MIGRATE_PEER2PEER
    | libvirt.VIR_MIGRATE_PERSIST_DEST
    | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE
    | libvirt.VIR_MIGRATE_NON_SHARED_INC
)
PROGRESS_KEYS = (
    "memory_total", "memory_processed", "memory_remaining",
    "disk_total", "disk_processed", "disk_remaining",
)
CANCELLED = "the live migration was cancelled"


def _job_active(domain: libvirt.virDomain) -> bool:
    """Whether an outgoing migration of the domain runs (another kind of job is not ours)."""
    try:
        stats = domain.jobStats(0)
    except libvirt.libvirtError:
        return False  # the domain left (or stopped) meanwhile: no job of it runs here
    if int(stats.get("type", libvirt.VIR_DOMAIN_JOB_NONE)) == libvirt.VIR_DOMAIN_JOB_NONE:
        return False
    operation = stats.get("operation", libvirt.VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT)
    return int(operation) == libvirt.VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT


def _job_figures(domain: libvirt.virDomain) -> dict[str, int] | None:
    """The contract's progress figures of the job running now; None when none runs."""
    try:
        stats = domain.jobStats(0)
    except libvirt.libvirtError:
        return None
    if int(stats.get("type", libvirt.VIR_DOMAIN_JOB_NONE)) == libvirt.VIR_DOMAIN_JOB_NONE:
        return None
    return {key: int(stats.get(key) or 0) for key in PROGRESS_KEYS}


class LiveMigrationMixin(LibvirtBase):
    migration_timeout = COMPLETION_TIMEOUT

    def prepare_migration(self, request: msg.SpawnRequest, *, live: bool) -> None:
        instance_uuid = canonical_uuid(request.instance_uuid)
        state = self.power_state(instance_uuid)
        if state != msg.POWER_NOSTATE:
            LOG.info("instance %s already has a domain here (%s); nothing to prepare",
                     instance_uuid, state)
            return
        if not self.has_disks:
            return
        self._ensure_vnc_socket_dir()
        prepare_for_migration(request, self.files, self.image_cache, with_disk=live)

    def live_migrate(
        self, instance_uuid: str, dest_uri: str, *, on_progress: ProgressCallback
    ) -> str:
        instance_uuid = canonical_uuid(instance_uuid)
        if not self.has_disks:
            # Never ask the test driver: it has no migration, and virsh hangs when it tries.
            raise DriverError("libvirt's test driver cannot live-migrate")
        peers.check_peer_uri(dest_uri)
        domain = self._call("live migration", lambda conn: self._lookup(conn, instance_uuid))
        if domain is not None and _job_active(domain):
            # A copy an earlier agent process started (libvirtd carries it on): see it through.
            LOG.info("a migration of %s is already running; waiting for it", instance_uuid)
            self._watch(domain, None, on_progress, time.monotonic() + self.migration_timeout)
            domain = self._call("live migration", lambda conn: self._lookup(conn, instance_uuid))
        if domain is None or not domain.isActive():
            return self._moved(instance_uuid, dest_uri, domain)
        state = domain_power_state(domain)
        if state not in (msg.POWER_RUNNING, msg.POWER_PAUSED):
            raise WrongState(f"cannot live-migrate instance {instance_uuid}: it is {state}")
        return self._migrate(instance_uuid, domain, dest_uri, on_progress)

    def _migrate(
        self,
        instance_uuid: str,
        domain: libvirt.virDomain,
        dest_uri: str,
        on_progress: ProgressCallback,
    ) -> str:
        state = domain_power_state(domain)
        # Only disks of this host are copied; a volume (a network disk) is reached by both qemus
        # over its export during the switch, and one that boots from a volume copies nothing.
        local = local_disk_targets(domain.XMLDesc(0))
        flags = LIVE_FLAGS
        params: dict[str, object] = {}
        if local:
            params[libvirt.VIR_MIGRATE_PARAM_MIGRATE_DISKS] = local
        else:
            flags &= ~libvirt.VIR_MIGRATE_NON_SHARED_INC
        address = peers.migration_address(dest_uri)
        if address is not None:
            # The hosts may share a hostname; qemu must be told the destination's address.
            params[libvirt.VIR_MIGRATE_PARAM_URI] = address
        failure: list[libvirt.libvirtError] = []

        def copy() -> None:
            try:
                domain.migrateToURI3(dest_uri, params, flags)
            except libvirt.libvirtError as exc:
                failure.append(exc)

        with self._migrations_lock:
            self._migrations[instance_uuid] = LiveMigrationJob()
        started = time.monotonic()
        LOG.info("live-migrating %s to %s", instance_uuid, dest_uri)
        thread = threading.Thread(target=copy, name=f"migrate-{instance_uuid[:8]}", daemon=True)
        thread.start()
        try:
            timed_out = self._watch(domain, thread, on_progress, started + self.migration_timeout)
        finally:
            with self._migrations_lock:
                job = self._migrations.pop(instance_uuid)
        if thread.is_alive():
            raise DriverError(f"the live migration of {instance_uuid} did not end, even "
                              f"{ABORT_GRACE:.0f} s after it was aborted; libvirt is not answering")
        if failure:
            # libvirt left the guest running here; a pause of ours to converge is undone.
            self._undo_pause(instance_uuid, job)
            if timed_out:
                raise DriverError(f"the live migration did not complete within "
                                  f"{self.migration_timeout:.0f} s and was cancelled")
            if failure[0].get_error_code() == libvirt.VIR_ERR_OPERATION_ABORTED:
                raise MigrationCancelled(CANCELLED)
            raise DriverError(f"live migration to {dest_uri} failed: {error_text(failure[0])}")
        LOG.info("instance %s live-migrated to %s in %.1f s", instance_uuid, dest_uri,
                 time.monotonic() - started)
        # libvirt runs it there as it ran here (a pause of ours to converge ends with the copy).
        return self._moved(instance_uuid, dest_uri, None, copied_state=state)

    def _watch(
        self,
        domain: libvirt.virDomain,
        thread: threading.Thread | None,
        on_progress: ProgressCallback,
        deadline: float,
    ) -> bool:
        """Report the job's figures until it ends (the thread making the call returns, or with
        no thread, libvirt shows no job); abort it past `deadline`. Return whether it was."""
        aborted_at: float | None = None
        while True:
            if thread is not None:
                thread.join(PROGRESS_INTERVAL)
                if not thread.is_alive():
                    return aborted_at is not None
            else:
                time.sleep(PROGRESS_INTERVAL)
                if not _job_active(domain):
                    return aborted_at is not None
            figures = _job_figures(domain)
            if figures is not None:
                try:
                    on_progress(figures)
                except Exception:
                    LOG.exception("the progress callback failed; the copy goes on")
            now = time.monotonic()
            if aborted_at is None and now > deadline:
                LOG.warning("migration of %s past its deadline; aborting it", domain.name())
                aborted_at = now
                try:
                    domain.abortJob()
                except libvirt.libvirtError as exc:
                    LOG.warning("abort refused: %s", exc)
            elif aborted_at is not None and now > aborted_at + ABORT_GRACE:
                return True

    def _undo_pause(self, instance_uuid: str, job: LiveMigrationJob) -> None:
        if not job.paused_to_converge:
            return

        def resume(domain: libvirt.virDomain) -> None:
            if domain.state()[0] == libvirt.VIR_DOMAIN_PAUSED:
                domain.resume()

        try:
            self._act("resume after a failed migration", instance_uuid, resume)
        except DriverError:
            LOG.exception("could not resume %s after its migration failed", instance_uuid)

    def _moved(
        self,
        instance_uuid: str,
        dest_uri: str,
        leftover: libvirt.virDomain | None,
        *,
        copied_state: str | None = None,
    ) -> str:
        """The guest has left: check it is active on the destination, remove what stayed here
        (an inactive definition, its files, its VNC socket), and return its state there.

        After a copy libvirt reported done (`copied_state`: the state it had here), asking the
        destination is a courtesy: an answer it cannot give does not undo the move.
        """
        try:
            state = self._state_on(dest_uri, instance_uuid)
        except DriverError:
            if copied_state is None:
                raise
            LOG.warning("cannot ask %s about %s after its migration; taking libvirt's word",
                        dest_uri, instance_uuid, exc_info=True)
            state = copied_state
        if state not in (msg.POWER_RUNNING, msg.POWER_PAUSED):
            raise NoSuchInstance(f"instance {instance_uuid} runs neither here nor on {dest_uri}")
        if leftover is not None:
            self.destroy(instance_uuid)  # inactive: only its definition and files go
        else:
            self.files.remove_instance_dir(instance_uuid)
            self._remove_vnc_socket(instance_uuid)
        return state

    @staticmethod
    def _state_on(uri: str, instance_uuid: str) -> str:
        with peers.peer(uri) as dconn:
            return peers.power_state_on(dconn, uri, instance_uuid)

    def abort_migration(self, instance_uuid: str) -> bool:
        def abort(domain: libvirt.virDomain) -> bool:
            if not _job_active(domain):
                return False
            domain.abortJob()
            return True

        try:
            return self._on_migrating("abort of the migration", instance_uuid, abort)
        except NoSuchInstance:
            return False

    def force_complete_migration(self, instance_uuid: str) -> bool:
        instance_uuid = canonical_uuid(instance_uuid)
        # Under the registry's lock: a migration that ends meanwhile sees the pause and undoes it.
        with self._migrations_lock:
            job = self._migrations.get(instance_uuid)
            if job is None:
                return False

            def pause(domain: libvirt.virDomain, job: LiveMigrationJob = job) -> bool:
                if not _job_active(domain):
                    return False
                if domain.state()[0] == libvirt.VIR_DOMAIN_RUNNING:
                    domain.suspend()
                    job.paused_to_converge = True
                return True

            try:
                return self._on_migrating("force-complete of the migration", instance_uuid,
                                          pause)
            except NoSuchInstance:
                return False

    def _on_migrating(
        self, what: str, instance_uuid: str, fn: Callable[[libvirt.virDomain], T]
    ) -> T:
        """Run fn(domain) on a domain whose migration may be running, outside the connection lock
        (as the copy's own calls are): libvirtd may keep a call on it waiting for seconds while
        the migration job starts or ends, and under the lock the heartbeat, the statistics and
        every task of the host would wait as long. Only the lookup takes the lock."""
        instance_uuid = canonical_uuid(instance_uuid)
        domain = self._call(f"{what} of {instance_uuid}",
                            lambda conn: self._lookup(conn, instance_uuid))
        if domain is None:
            raise NoSuchInstance(f"instance {instance_uuid} has no domain on this host")
        try:
            return fn(domain)
        except libvirt.libvirtError as exc:
            raise DriverError(f"{what} of {instance_uuid} failed: {error_text(exc)}") from exc
