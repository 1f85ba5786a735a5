"""The compute agent process: a Celery worker on this host's queue, plus a heartbeat thread.

    python -m compute_agent --host NAME --libvirt-uri URI [--broker URL] [--concurrency N]
                            [--heartbeat-interval S] [--stats-interval S] [--instances-dir DIR]
                            [--migration-uri URI] [--vnc-socket-dir DIR] [--config PATH]
                            [--network-driver user|linuxbridge] [--netns NAME]
                            [--tunnel-ip IP] [--physical-interface-mapping PHYSNET:IFACE …]
    python -m compute_agent join URL TOKEN …   (compute_agent.join: make this machine a host)

Every option also comes from the environment (KUMO_*), and --config names an environment file
(what `join` writes) whose values come before the process's own environment.

The worker runs its own Celery app (no Django, no `cloud`) with the threads pool: every task then
shares one process, hence one libvirt connection and, with `test:///default`, one test-driver
state (that driver keeps its state per process, so a prefork pool would scatter instances across
children that cannot see each other's domains).
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
from compute_agent.drivers.base import DriverError
from compute_agent.drivers.libvirt import DEFAULT_INSTANCES_DIR, LibvirtDriver
from compute_agent.env_file import with_config_file
from compute_agent.guest_stats import DEFAULT_INTERVAL as DEFAULT_STATS_INTERVAL
from compute_agent.guest_stats import StatsLoop
from compute_agent.host_process import (
    DEFAULT_BROKER,
    DEFAULT_HEARTBEAT_INTERVAL,
    create_app,
    host_identity,
    serve,
    worker_argv,
)
from compute_agent.kvm import detect_domain_type
from compute_agent.logcontext import install_record_factory, instance_context
from compute_agent.manager import ComputeManager, HostTask, host_tasks
from compute_agent.network import DRIVERS, MetadataProxy, NetworkDriver, NetworkError
from compute_agent.network import create_driver as create_network_driver
from compute_agent.periodic import Periodic
from compute_agent.reporter import CeleryReporter, HostIdentity

if TYPE_CHECKING:
    from celery import Celery

LOG = logging.getLogger(__name__)

DEFAULT_LIBVIRT_URI = "test:///default"
# Under the instances directory: what the network driver made (compute_agent.network).
NETWORK_STATE_DIR = "_network"
# Platform notes: more than about four concurrent qemu boots on a small host only queue for CPU.
DEFAULT_CONCURRENCY = 4
# A live migration holds a worker thread for the whole copy; its abort and force-complete need
# another one while it runs (compute_agent.migration_tasks).
MIN_CONCURRENCY = 2

@dataclass(frozen=True)
class AgentConfig:
    host: str
    libvirt_uri: str = DEFAULT_LIBVIRT_URI
    broker_url: str = DEFAULT_BROKER
    concurrency: int = DEFAULT_CONCURRENCY
    heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL
    # How often the guests' counters are sent (compute_agent.guest_stats); 0: never.
    stats_interval: float = DEFAULT_STATS_INTERVAL
    instances_dir: str = DEFAULT_INSTANCES_DIR
    host_ip: str = "127.0.0.1"
    vnc_listen: str = "127.0.0.1"
    vnc_socket_dir: str | None = None
    migration_uri: str = ""
    domain_type: str | None = None
    log_level: str = "INFO"
    # The data plane (compute_agent.network): which driver, the host's network namespace (a
    # simulated host's; empty on a real one), the VXLAN source address (default host_ip), and
    # the interfaces of flat networks (PHYSNET:IFACE).
    network_driver: str = "user"
    netns: str = ""
    tunnel_ip: str = ""
    physical_interface_mappings: tuple[str, ...] = ()
    network_driver_allow_host_netns: bool = False
    # The secret this host signs its reports with, given when it joined (compute_agent.join);
    # empty for a host that shares the control plane's broker credential.
    host_secret: str = field(default="", repr=False)
    # The metadata service (compute_agent.network.metadata_proxy): where the control plane answers
    # (KUMO_INTERNAL_URL), and the secret shared by the hosts that did not join
    # (KUMO_METADATA_SECRET); a joined host signs with host_secret instead.
    internal_url: str = ""
    metadata_secret: str = field(default="", repr=False)

    @property
    def queue(self) -> str:
        return msg.compute_queue(self.host)

    @property
    def identity(self) -> HostIdentity | None:
        """Who this host is to the conductor, when it joined with a credential of its own."""
        return host_identity(self.host, self.host_secret, self.broker_url)

    @property
    def worker_hostname(self) -> str:
        return f"compute@{self.host}"


def parse_args(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> AgentConfig:
    """Command line first, then the --config file, then the environment, then defaults."""
    env = os.environ if environ is None else environ
    parser = argparse.ArgumentParser(
        prog="python -m compute_agent", description="Kumo compute agent (nova-compute)."
    )
    add = parser.add_argument
    add("--config", metavar="PATH",
        help="an environment file of KUMO_* settings, as `python -m compute_agent join` writes")
    env = with_config_file(parser, argv, env)
    add("--host", default=env.get("KUMO_COMPUTE_HOST") or socket.gethostname(),
        help="this host's name; the agent consumes queue compute.HOST")
    add("--libvirt-uri", default=env.get("KUMO_LIBVIRT_URI", DEFAULT_LIBVIRT_URI))
    add("--broker",
        default=env.get("CELERY_BROKER_URL") or env.get("REDIS_URL") or DEFAULT_BROKER)
    add("--concurrency", type=int,
        default=int(env.get("KUMO_COMPUTE_CONCURRENCY", DEFAULT_CONCURRENCY)))
    add("--heartbeat-interval", type=float,
        default=float(env.get("KUMO_HEARTBEAT_INTERVAL", DEFAULT_HEARTBEAT_INTERVAL)))
    add("--stats-interval", type=float,
        default=float(env.get("KUMO_GUEST_STATS_INTERVAL", DEFAULT_STATS_INTERVAL)),
        help="seconds between reports of the guests' CPU, memory, disk and network counters "
             "(0: none)")
    add("--instances-dir", default=env.get("KUMO_INSTANCES_DIR", DEFAULT_INSTANCES_DIR))
    add("--host-ip", default=env.get("KUMO_HOST_IP", "127.0.0.1"),
        help="address the control plane and console proxy use to reach this host")
    add("--vnc-listen", default=env.get("KUMO_VNC_LISTEN", "127.0.0.1"))
    add("--vnc-socket-dir", default=env.get("KUMO_VNC_SOCKET_DIR") or None,
        help="guests' VNC listens on a unix socket DIR/<uuid>.vnc instead of a TCP port (a "
             "directory the console relay can open, e.g. on a host in another network "
             "namespace)")
    add("--migration-uri", default=env.get("KUMO_MIGRATION_URI", ""),
        help="how other hosts' libvirt reaches this one for a migration (qemu+tcp://ADDRESS/"
             "system, or qemu+unix:///system?socket=PATH); reported to the control plane. "
             "Without it this host takes no migrations")
    add("--domain-type", choices=("test", "qemu", "kvm"),
        default=env.get("KUMO_DOMAIN_TYPE") or None,
        help="default: 'test' for test:// URIs; for qemu:///, 'kvm' if a probe shows KVM works, "
             "else 'qemu' (TCG)")
    add("--log-level", default=env.get("KUMO_LOG_LEVEL", "INFO"))
    add("--network-driver", choices=DRIVERS, default=env.get("KUMO_NETWORK_DRIVER", "user"),
        help="'user': every NIC is qemu's user-mode NIC (no data plane); 'linuxbridge': tenant "
             "networks on bridges, VXLAN, DHCP and security groups in this host's namespace")
    add("--netns", default=env.get("KUMO_NETNS", ""),
        help="the host's network namespace (/run/netns/NAME) where its bridges and rules live")
    add("--tunnel-ip", default=env.get("KUMO_TUNNEL_IP", ""),
        help="this host's VXLAN source address (default: --host-ip)")
    add("--physical-interface-mapping", action="append",
        default=[m for m in env.get("KUMO_PHYSICAL_INTERFACE_MAPPINGS", "").split(",") if m],
        metavar="PHYSNET:IFACE", help="the interface of a flat network's physical network "
                                      "(repeatable)")
    add("--network-driver-allow-host-netns", action="store_true",
        default=env.get("KUMO_NETWORK_DRIVER_ALLOW_HOST_NETNS", "") in ("1", "true", "yes"),
        help="let the linuxbridge driver change this machine's own network namespace (a real "
             "host, not a simulated one)")
    args = parser.parse_args(argv)

    if not msg.HOST_NAME.match(args.host):
        parser.error(f"--host {args.host!r}: use letters, digits, '.', '_' or '-' (max 63)")
    if args.concurrency < MIN_CONCURRENCY:
        parser.error(f"--concurrency must be at least {MIN_CONCURRENCY} (a live migration's "
                     "abort runs beside it)")
    if args.vnc_socket_dir is not None and not os.path.isabs(args.vnc_socket_dir):
        parser.error(f"--vnc-socket-dir {args.vnc_socket_dir!r}: give an absolute path")
    if args.heartbeat_interval <= 0:
        parser.error("--heartbeat-interval must be positive")
    if args.stats_interval < 0:
        parser.error("--stats-interval must be positive, or 0 for no statistics")
    try:
        vnc_listen = ipaddress.ip_address(args.vnc_listen)
    except ValueError:
        parser.error(f"--vnc-listen {args.vnc_listen!r} is not an IP address")
    if vnc_listen.is_unspecified:
        parser.error("--vnc-listen: use loopback or the host's management address, "
                     "never every interface")
    return AgentConfig(
        host=args.host,
        libvirt_uri=args.libvirt_uri,
        broker_url=args.broker,
        concurrency=args.concurrency,
        heartbeat_interval=args.heartbeat_interval,
        stats_interval=args.stats_interval,
        instances_dir=args.instances_dir,
        host_ip=args.host_ip,
        vnc_listen=args.vnc_listen,
        vnc_socket_dir=args.vnc_socket_dir,
        migration_uri=args.migration_uri,
        domain_type=args.domain_type,
        log_level=args.log_level.upper(),
        host_secret=env.get("KUMO_HOST_SECRET", ""),
        internal_url=env.get("KUMO_INTERNAL_URL", ""),
        metadata_secret=env.get("KUMO_METADATA_SECRET", ""),
        network_driver=args.network_driver,
        netns=args.netns,
        tunnel_ip=args.tunnel_ip,
        physical_interface_mappings=tuple(args.physical_interface_mapping),
        network_driver_allow_host_netns=args.network_driver_allow_host_netns,
    )


def register_tasks(app: Celery, manager: ComputeManager) -> dict[str, Any]:
    """Register one Celery task per host task ComputeManager declares (@host_task), under the
    contract's names; return them by name."""
    return {
        task.name: _register(app, task, getattr(manager, task.method_name))
        for task in host_tasks().values()
    }


def _register(app: Celery, task: HostTask, method: Callable[[Any], object]) -> Any:
    # shared=False: a shared task would be added to every Celery app made later in the process,
    # each bound to this app's manager.
    @app.task(
        name=task.name,
        shared=False,
        autoretry_for=task.retry_for,
        retry_backoff=True,
        max_retries=task.max_retries,
    )
    def run(payload: dict[str, Any]) -> None:
        with instance_context(str(payload.get("instance_uuid", ""))):
            method(task.request_type.from_dict(payload))

    return run


# The image cache is swept about this often (every N heartbeats, N derived from the interval).
CACHE_SWEEP_PERIOD = 600.0


class Heartbeat(Periodic):
    """Sends a host report at once, then every `interval` seconds, until stopped; every
    `sweep_every` beats it also sweeps the image cache."""

    name = "heartbeat"

    def __init__(
        self, manager: ComputeManager, interval: float, sweep_every: int | None = None
    ) -> None:
        super().__init__(interval)
        self.manager = manager
        self.sweep_every = sweep_every or max(1, round(CACHE_SWEEP_PERIOD / interval))
        self.beats = 0

    def tick(self) -> None:
        self.manager.send_host_report()  # never raises
        self.beats += 1
        if self.beats % self.sweep_every == 0:
            self.manager.sweep_image_cache()  # never raises either


@dataclass
class Agent:
    """Everything one agent process runs, wired together but not started."""

    config: AgentConfig
    app: Celery
    driver: LibvirtDriver
    network: NetworkDriver
    manager: ComputeManager
    heartbeat: Heartbeat
    stats: StatsLoop


def build_agent(config: AgentConfig) -> Agent:
    """Connect to the hypervisor, then build the Celery app, manager and heartbeat.

    Raises DriverError when the hypervisor cannot be reached, NetworkError when the network
    driver cannot run here: better not to start than to take work off the queue and fail every
    task.
    """
    domain_type = config.domain_type
    if domain_type is None and config.libvirt_uri.startswith("qemu:///"):
        domain_type = detect_domain_type(config.libvirt_uri)  # kvm only if it really works
    driver = LibvirtDriver(
        config.libvirt_uri,
        instances_dir=config.instances_dir,
        domain_type=domain_type,
        vnc_listen=config.vnc_listen,
        vnc_socket_dir=config.vnc_socket_dir,
        takes_migrations=bool(config.migration_uri),
    )
    try:
        driver.host_info()
        driver.init_host()
        network = create_network_driver(
            config.network_driver,
            state_dir=Path(config.instances_dir) / NETWORK_STATE_DIR,
            netns=config.netns,
            tunnel_ip=config.tunnel_ip or config.host_ip,
            physical_interface_mappings=config.physical_interface_mappings,
            allow_host_netns=config.network_driver_allow_host_netns,
            metadata=metadata_proxy(config),
        )
    except (DriverError, NetworkError):
        driver.close()
        raise
    app = create_app(config)
    reporter = CeleryReporter(app, config.identity)
    manager = ComputeManager(
        config.host, driver, reporter, host_ip=config.host_ip,
        migration_uri=config.migration_uri, network=network,
    )
    register_tasks(app, manager)
    # A guest that dies is reported at once: the control plane restarts it within seconds.
    def report_stops(stopped: list[str]) -> None:
        manager.send_domains_changed(stopped)

    driver.watch_guests(report_stops)
    return Agent(config, app, driver, network, manager,
                 Heartbeat(manager, config.heartbeat_interval),
                 StatsLoop(config.host, driver, reporter, config.stats_interval))


def metadata_proxy(config: AgentConfig) -> MetadataProxy | None:
    """The metadata proxy of a host with a data plane, when it can sign: a joined host with its
    own secret and name, any other with the shared KUMO_METADATA_SECRET. None (and guests use the
    config drive) without the control plane's URL or a secret."""
    if config.network_driver != "linuxbridge":
        return None
    if not config.internal_url or not (config.host_secret or config.metadata_secret):
        LOG.warning("no metadata service on this host: it needs KUMO_INTERNAL_URL and "
                    "KUMO_HOST_SECRET (a joined host) or KUMO_METADATA_SECRET")
        return None
    if config.host_secret:
        return MetadataProxy(config.internal_url, config.host_secret, config.host)
    return MetadataProxy(config.internal_url, config.metadata_secret)


def run(config: AgentConfig) -> int:
    """Run the agent until Celery's worker stops (SIGTERM: warm shutdown). Return an exit code."""
    forbid_control_plane_imports()
    import_redis_lean()
    import_celery_lean()
    install_record_factory()
    try:
        agent = build_agent(config)
    except (DriverError, NetworkError) as exc:
        logging.basicConfig(level=logging.ERROR)
        LOG.error("compute agent %s cannot start: %s", config.host, exc)
        return 1

    # Heartbeats start once the worker consumes, so "alive" always means "able to take work".
    def on_ready() -> None:
        LOG.info("compute agent %s ready on %s (%s)", config.host, config.queue, config.libvirt_uri)
        agent.heartbeat.start()
        agent.stats.start()

    def on_shutdown() -> None:
        agent.heartbeat.stop()
        agent.stats.stop()

    try:
        return serve(agent.app, worker_argv(config), config.host, on_ready, on_shutdown)
    finally:
        on_shutdown()
        agent.driver.close()


def main(argv: Sequence[str] | None = None) -> int:
    return run(parse_args(argv))
