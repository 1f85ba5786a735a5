"""What every host process shares: the compute agent (compute_agent.worker) and the volume host
(compute_agent.volume_worker) are each a Celery worker of their own app (no Django, no `cloud`) on
their host's queue, with the threads pool, signed reports, JSON logs and tracing as configured.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote, urlsplit

from compute_agent import logformat, tracing
from compute_agent import messages as msg
from compute_agent.reporter import HostIdentity

if TYPE_CHECKING:
    from celery import Celery

DEFAULT_BROKER = "redis://127.0.0.1:6379/0"
DEFAULT_HEARTBEAT_INTERVAL = 10.0
VISIBILITY_TIMEOUT = 1800

_LOG_FORMAT = (
    "[%(asctime)s: %(levelname)s/%(threadName)s] [req:%(request_id)s] %(name)s: %(message)s"
)
_TASK_LOG_FORMAT = (
    "[%(asctime)s: %(levelname)s/%(threadName)s] [req:%(request_id)s] "
    "%(task_name)s[%(task_id)s]: %(message)s"
)


class WorkerConfig(Protocol):
    """What create_app and worker_argv need of a host process's configuration: the compute agent's
    (AgentConfig) or the volume host's (compute_agent.volume_worker)."""

    @property
    def host(self) -> str: ...

    @property
    def broker_url(self) -> str: ...

    @property
    def queue(self) -> str: ...

    @property
    def identity(self) -> HostIdentity | None: ...

    @property
    def concurrency(self) -> int: ...

    @property
    def worker_hostname(self) -> str: ...

    @property
    def log_level(self) -> str: ...


def host_identity(host: str, secret: str, broker_url: str) -> HostIdentity | None:
    """Who a host is to the conductor, when it joined with a credential of its own."""
    if not secret:
        return None
    url = urlsplit(broker_url)
    return HostIdentity(
        host=host,
        secret=secret,
        amqp_user=unquote(url.username or "") if url.scheme.startswith(("amqp", "pyamqp"))
        else "",
    )


def create_app(config: WorkerConfig) -> Celery:
    # Imported here, not at the top: run() must install the import guard (compute_agent.boundary)
    # before celery and kombu are first imported, or they pull in Django where it is installed.
    from celery import Celery
    from kombu import Queue

    from compute_agent import redis_transport

    # fixups=[]: Celery's default Django fixup imports Django whenever DJANGO_SETTINGS_MODULE is
    # set in the environment, which would break the agent's no-Django boundary on a shared host.
    app = Celery("compute_agent", broker=config.broker_url, fixups=[], set_as_current=False)
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        # A broker outage never stops the agent: it reconnects for as long as it takes; its
        # heartbeats and reports fail meanwhile and are retried (reporter.py).
        broker_connection_retry_on_startup=True,
        broker_connection_retry=True,
        broker_connection_max_retries=None,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        # As the control plane's workers (cloud/settings.py): the prefetch lowered after a
        # reconnect is raised again only by acknowledgements that fail on the dead channel.
        worker_enable_prefetch_count_reduction=False,
        # Redis hands a message the agent took but never acknowledged (it was killed) to the
        # agent again after this long; a spawn or a snapshot upload can take minutes on a slow
        # host, so it stays well above that. The control plane's reconciler re-drives stuck work
        # sooner anyway (RabbitMQ redelivers at once on a dropped connection).
        broker_transport_options=_transport_options(config),
        # kombu's Redis transport with one client per channel, not one per message and ack.
        broker_transport=redis_transport.transport_for(config.broker_url),
        task_queues=[Queue(config.queue)],
        task_default_queue=config.queue,
        # Only the host queue: no pidbox broadcast queue, no events.
        worker_enable_remote_control=False,
        worker_send_task_events=False,
        worker_log_format=_LOG_FORMAT,
        worker_task_log_format=_TASK_LOG_FORMAT,
    )
    return app


def _transport_options(config: WorkerConfig) -> dict[str, Any]:
    options: dict[str, Any] = {"visibility_timeout": VISIBILITY_TIMEOUT}
    if config.identity is not None and urlsplit(config.broker_url).scheme.startswith("redis"):
        # A joined host's Redis user may touch only its own keys (cloud/enrollment/broker_users.py)
        options.update(msg.redis_unacked_keys(config.host))
    return options


def worker_argv(config: WorkerConfig) -> list[str]:
    return [
        "worker",
        "--pool=threads",
        f"--concurrency={config.concurrency}",
        f"--hostname={config.worker_hostname}",
        f"--queues={config.queue}",
        f"--loglevel={config.log_level}",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]


def serve(
    app: Celery, argv: list[str], host: str, on_ready: Callable[[], None],
    on_shutdown: Callable[[], None],
) -> int:
    """Run a host process's Celery worker until it stops (SIGTERM: warm shutdown): `on_ready` once
    it consumes, `on_shutdown` when it stops; JSON logs (KUMO_LOG_FORMAT=json) and tracing as
    configured. Return an exit code. The import guard must already be installed."""
    from celery import signals  # only now: see create_app() on the import guard

    signals.worker_ready.connect(lambda **_: on_ready(), weak=False)
    signals.worker_shutdown.connect(lambda **_: on_shutdown(), weak=False)
    if os.environ.get(logformat.FORMAT_ENV, "").strip().lower() == "json":
        def json_logs(logger: logging.Logger, **_: Any) -> None:
            logformat.use_json_on(logger, host)

        signals.after_setup_logger.connect(json_logs, weak=False)
        signals.after_setup_task_logger.connect(json_logs, weak=False)
    if tracing.setup(host):
        tracing.install_celery_hooks()
    # Celery's `worker` command alone, not app.worker_main(): that parses argv with the whole
    # `celery` command line, whose `amqp` shell imports click_repl and prompt_toolkit (~10 MiB of
    # every host process's memory) for a command a host never runs.
    from celery.bin.base import CLIContext
    from celery.bin.worker import worker

    try:
        code = worker.main(args=argv[1:], obj=CLIContext(app=app, no_color=None, workdir=None),
                           prog_name="celery worker", standalone_mode=False)
    except SystemExit as exit_:
        code = exit_.code
    if code is None or isinstance(code, int):
        return code or 0
    return 1
