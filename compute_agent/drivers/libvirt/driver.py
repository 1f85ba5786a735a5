"""LibvirtDriver: the Driver interface on libvirt, assembled from one mixin per role."""

from __future__ import annotations

from compute_agent import messages as msg
from compute_agent.drivers.base import DriverError, ProgressCallback
from compute_agent.drivers.libvirt.cold_migration import ColdMigrationMixin
from compute_agent.drivers.libvirt.console import ConsoleMixin
from compute_agent.drivers.libvirt.containers import ContainerMixin
from compute_agent.drivers.libvirt.devices import DevicesMixin
from compute_agent.drivers.libvirt.events import GuestEventsMixin
from compute_agent.drivers.libvirt.host import HostMixin
from compute_agent.drivers.libvirt.lifecycle import LifecycleMixin
from compute_agent.drivers.libvirt.live_migration import LiveMigrationMixin
from compute_agent.drivers.libvirt.power import PowerMixin
from compute_agent.drivers.libvirt.rescue import RescueMixin
from compute_agent.drivers.libvirt.snapshot import SnapshotMixin
from compute_agent.drivers.libvirt.stats import StatsMixin


class LibvirtDriver(
    LifecycleMixin,
    PowerMixin,
    ConsoleMixin,
    SnapshotMixin,
    RescueMixin,
    DevicesMixin,
    HostMixin,
    LiveMigrationMixin,
    ColdMigrationMixin,
    GuestEventsMixin,
    StatsMixin,
    ContainerMixin,
):
    """compute_agent.drivers.base.Driver on any libvirt URI.

    On the test driver (`domain_type` "test") a domain is only a definition: no disks, no config
    drive, no console log. Any other type boots a real guest from files under `instances_dir`
    (see compute_agent.instance_files), its image fetched through the host's image cache.

    Each role lives in a module of its own and shares only LibvirtBase (the connection and the
    host's configuration): lifecycle (spawn, destroy), power (power state and actions), console,
    snapshot, rescue, devices (NICs, crash dumps), host (host info, the domain list, init_host), live migration (preparing a
    destination, the live copy, abort, force-complete), cold migration (sending the disk,
    finishing on the destination), events (guests that stop on their own, told at once) and stats
    (guests' counters for the statistics report); containers (an lxc:// URI) take their own way
    at a few points of these (containers).
    """

    # What a container cannot do here, refused by name before anything is touched: it has no
    # rescue disk to boot from, and libvirt's LXC driver has no migration. (Its snapshot is a tar
    # of its root filesystem: drivers/libvirt/snapshot.py.)
    def _not_for_containers(self, what: str) -> None:
        if self.is_container:
            raise DriverError(f"{what} is not supported for containers (libvirt LXC)")

    def rescue(self, request: msg.RescueRequest) -> str:
        self._not_for_containers("rescue")
        return super().rescue(request)

    def prepare_migration(self, request: msg.SpawnRequest, *, live: bool) -> None:
        self._not_for_containers("migration")
        super().prepare_migration(request, live=live)

    def live_migrate(self, instance_uuid: str, dest_uri: str, *,
                     on_progress: ProgressCallback) -> str:
        self._not_for_containers("live migration")
        return super().live_migrate(instance_uuid, dest_uri, on_progress=on_progress)

    def migrate_disk(self, instance_uuid: str, dest_uri: str, *, stop_timeout: float) -> str:
        self._not_for_containers("migration")
        return super().migrate_disk(instance_uuid, dest_uri, stop_timeout=stop_timeout)
