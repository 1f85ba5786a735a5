"""The volume host process (Cinder's cinder-volume): a Celery worker on this host's queue
`volume.NAME`, a VolumeManager over one back end, and a heartbeat.

    python -m compute_agent volume --host NAME [--broker URL] [--volumes-dir DIR]
                                   [--backend nbd|fake] [--export-address IP] [--export-port PORT]
                                   [--availability-zone ZONE] [--heartbeat-interval S]
                                   [--netns NAME] [--concurrency N] [--config PATH]
    python -m compute_agent volume --stop-daemon --volumes-dir DIR

Every option also comes from the environment (KUMO_*), and --config names an environment file
whose values come before the process's own environment, as for the compute agent. Like it, this
process never imports Django or `cloud`; it shares the compute agent's Celery set-up, its signed
reports (a host that joined with a secret of its own signs with it), log format and tracing.

With the nbd back end the process starts a qemu-storage-daemon that outlives it: a restart of
the agent keeps every attached guest's disk. Stopping the daemon is the deployment's business
(`make run` and simhosts do it when they stop).
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compute_agent import messages as msg
from compute_agent.boundary import (
    forbid_control_plane_imports,
    import_celery_lean,
    import_redis_lean,
)
from compute_agent.env_file import with_config_file
from compute_agent.host_process import (
    DEFAULT_BROKER,
    DEFAULT_HEARTBEAT_INTERVAL,
    create_app,
    host_identity,
    serve,
    worker_argv,
)
from compute_agent.host_task import HostTask
from compute_agent.logcontext import install_record_factory
from compute_agent.periodic import Periodic
from compute_agent.reporter import CeleryReporter, HostIdentity
from compute_agent.volume_manager import VolumeManager, volume_tasks
from compute_agent.volumes.backend import VolumeBackend, VolumeBackendError

if TYPE_CHECKING:
    from celery import Celery

LOG = logging.getLogger(__name__)

BACKENDS = ("nbd", "fake")
DEFAULT_VOLUMES_DIR = "/var/lib/kumo/volumes"
DEFAULT_EXPORT_PORT = 10809  # NBD's registered port
# Copies and image transfers are disk- and network-bound; a few at once keep a disk busy without
# starving the heartbeat.
DEFAULT_CONCURRENCY = 4


@dataclass(frozen=True)
class VolumeConfig:
    host: str
    broker_url: str = DEFAULT_BROKER
    volumes_dir: str = DEFAULT_VOLUMES_DIR
    backend: str = "nbd"
    export_address: str = "127.0.0.1"
    export_port: int = DEFAULT_EXPORT_PORT
    availability_zone: str = "nova"
    heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL
    concurrency: int = DEFAULT_CONCURRENCY
    # A simulated host's network namespace, where the NBD server listens (the agent stays in the
    # machine's, with the broker); empty on a real host.
    netns: str = ""
    log_level: str = "INFO"
    host_secret: str = field(default="", repr=False)
    stop_daemon: bool = False

    @property
    def queue(self) -> str:
        return msg.volume_queue(self.host)

    @property
    def identity(self) -> HostIdentity | None:
        return host_identity(self.host, self.host_secret, self.broker_url)

    @property
    def worker_hostname(self) -> str:
        return f"volume@{self.host}"


def parse_args(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> VolumeConfig:
    """Command line first, then the --config file, then the environment, then defaults."""
    env = os.environ if environ is None else environ
    parser = argparse.ArgumentParser(
        prog="python -m compute_agent volume", description="Kumo volume host (cinder-volume)."
    )
    add = parser.add_argument
    add("--config", metavar="PATH", help="an environment file of KUMO_* settings")
    env = with_config_file(parser, argv, env)
    add("--host", default=env.get("KUMO_VOLUME_HOST") or socket.gethostname(),
        help="this volume host's name; it consumes queue volume.HOST")
    add("--broker",
        default=env.get("CELERY_BROKER_URL") or env.get("REDIS_URL") or DEFAULT_BROKER)
    add("--volumes-dir", default=env.get("KUMO_VOLUMES_DIR", DEFAULT_VOLUMES_DIR),
        help="where the volume files live")
    add("--backend", choices=BACKENDS, default=env.get("KUMO_VOLUME_BACKEND", "nbd"),
        help="'nbd': qcow2 files served by qemu-storage-daemon over NBD; 'fake': in memory, "
             "for tests")
    add("--export-address", default=env.get("KUMO_VOLUME_EXPORT_ADDRESS", "127.0.0.1"),
        help="the address compute hosts reach the NBD server at (it listens there)")
    add("--export-port", type=int,
        default=int(env.get("KUMO_VOLUME_EXPORT_PORT", DEFAULT_EXPORT_PORT)))
    add("--availability-zone", default=env.get("KUMO_VOLUME_AVAILABILITY_ZONE", "nova"))
    add("--heartbeat-interval", type=float,
        default=float(env.get("KUMO_HEARTBEAT_INTERVAL", DEFAULT_HEARTBEAT_INTERVAL)))
    add("--concurrency", type=int,
        default=int(env.get("KUMO_VOLUME_CONCURRENCY", DEFAULT_CONCURRENCY)))
    add("--netns", default=env.get("KUMO_NETNS", ""),
        help="the network namespace the NBD server runs in (a simulated host's)")
    add("--log-level", default=env.get("KUMO_LOG_LEVEL", "INFO"))
    add("--stop-daemon", action="store_true",
        help="stop the qemu-storage-daemon serving --volumes-dir (which outlives the agent) and "
             "exit: what a deployment runs when it takes the volume host down")
    args = parser.parse_args(argv)

    if not msg.HOST_NAME.match(args.host):
        parser.error(f"--host {args.host!r}: use letters, digits, '.', '_' or '-' (max 63)")
    if args.heartbeat_interval <= 0:
        parser.error("--heartbeat-interval must be positive")
    if args.concurrency < 1:
        parser.error("--concurrency must be at least 1")
    if not 0 < args.export_port < 65536:
        parser.error(f"--export-port {args.export_port}: give a TCP port (1-65535)")
    try:
        address = ipaddress.ip_address(args.export_address)
    except ValueError:
        parser.error(f"--export-address {args.export_address!r} is not an IP address")
    if address.is_unspecified:
        parser.error("--export-address: give the address compute hosts reach, not every "
                     "interface (the NBD exports carry no authentication)")
    if not args.availability_zone:
        parser.error("--availability-zone must not be empty")
    return VolumeConfig(
        host=args.host,
        broker_url=args.broker,
        volumes_dir=os.path.abspath(args.volumes_dir),
        backend=args.backend,
        export_address=args.export_address,
        export_port=args.export_port,
        availability_zone=args.availability_zone,
        heartbeat_interval=args.heartbeat_interval,
        concurrency=args.concurrency,
        netns=args.netns,
        log_level=args.log_level.upper(),
        host_secret=env.get("KUMO_HOST_SECRET", ""),
        stop_daemon=args.stop_daemon,
    )


class CeleryVolumeReporter(CeleryReporter):
    """The volume host's reports: conductor tasks by name, signed as the compute agent's."""

    def volume_event(self, event: msg.VolumeEvent) -> None:
        self._send(msg.TASK_VOLUME_EVENT, event.to_dict())
        LOG.info("reported %s for volume %s", event.event, event.volume_id)

    def volume_host_report(self, report: msg.VolumeHostReport) -> None:
        self._send(msg.TASK_VOLUME_HOST_REPORT, report.to_dict())
        LOG.debug("reported volume host %s with %d volumes", report.host, len(report.volumes))


def create_backend(config: VolumeConfig) -> VolumeBackend:
    if config.backend == "fake":
        from compute_agent.volumes.fake import FakeVolumes

        return FakeVolumes(export_host=config.export_address, port=config.export_port)
    from compute_agent.volumes.nbd import NbdBackend

    return NbdBackend(config.volumes_dir, export_host=config.export_address,
                      port=config.export_port, netns=config.netns)


class VolumeHeartbeat(Periodic):
    """A host report at once, then every `interval` seconds; before each, a back end whose
    daemon died is started again (its exports come back with it)."""

    name = "heartbeat"

    def __init__(self, manager: VolumeManager, interval: float) -> None:
        super().__init__(interval)
        self.manager = manager

    def tick(self) -> None:
        revive: Callable[[], bool] | None = getattr(self.manager.backend, "ensure_running", None)
        if revive is not None:
            try:
                revive()
            except VolumeBackendError as exc:
                LOG.error("the volume back end is down and does not start: %s", exc)
        self.manager.send_host_report()  # never raises


def register_tasks(app: Celery, manager: VolumeManager) -> dict[str, Any]:
    """One Celery task per task VolumeManager declares, under the contract's names."""
    return {task.name: _register(app, task, getattr(manager, task.method_name))
            for task in volume_tasks().values()}


def _register(app: Celery, task: HostTask, method: Callable[[Any], object]) -> Any:
    # shared=False: a shared task would be added to every Celery app made later in the process.
    @app.task(name=task.name, shared=False, autoretry_for=task.retry_for, retry_backoff=True,
              max_retries=task.max_retries)
    def run(payload: dict[str, Any]) -> None:
        method(task.request_type.from_dict(payload))

    return run


@dataclass
class VolumeHost:
    """Everything one volume host process runs, wired together; the back end started."""

    config: VolumeConfig
    app: Celery
    backend: VolumeBackend
    manager: VolumeManager
    heartbeat: VolumeHeartbeat


def build_volume_host(config: VolumeConfig) -> VolumeHost:
    """Start the back end, then build the Celery app, manager and heartbeat. Raises
    VolumeBackendError when the back end cannot serve: better not to start than to take work off
    the queue and fail every task."""
    backend = create_backend(config)
    backend.start()
    app = create_app(config)
    manager = VolumeManager(
        config.host, backend, CeleryVolumeReporter(app, config.identity),
        backend_name=config.backend, volumes_dir=Path(config.volumes_dir),
        availability_zone=config.availability_zone,
    )
    manager.clear_transfers()
    register_tasks(app, manager)
    return VolumeHost(config, app, backend, manager,
                      VolumeHeartbeat(manager, config.heartbeat_interval))


def run(config: VolumeConfig) -> int:
    """Run the volume host until Celery's worker stops (SIGTERM: warm shutdown)."""
    forbid_control_plane_imports()
    import_redis_lean()
    import_celery_lean()
    if config.stop_daemon:
        create_backend(config).stop()
        return 0
    install_record_factory()
    try:
        volume_host = build_volume_host(config)
    except (VolumeBackendError, OSError) as exc:
        logging.basicConfig(level=logging.ERROR)
        LOG.error("volume host %s cannot start: %s", config.host, exc)
        return 1

    def on_ready() -> None:
        LOG.info("volume host %s ready on %s (%s back end, exports at %s:%d)", config.host,
                 config.queue, config.backend, config.export_address, config.export_port)
        volume_host.heartbeat.start()

    try:
        return serve(volume_host.app, worker_argv(config), config.host, on_ready,
                     volume_host.heartbeat.stop)
    finally:
        volume_host.heartbeat.stop()


def main(argv: Sequence[str] | None = None) -> int:
    return run(parse_args(argv))
