"""Per-host broker credentials on the machine's real RabbitMQ and Redis (issue 13).

Each test joins two hosts, A and B, through the real join: `python -m compute_agent join` against
the API (pytest-django's live server), which makes each a broker user with cloud.enrollment's
broker_users. Then, with A's credential:

- A consumes its own queue (kombu, and the real agent process with Celery as it runs in
  production) and its reports reach the conductor (a real `celery -A cloud worker -Q conductor`)
  and are applied;
- A cannot read B's queue or the conductor's, nor put work into B's queue;
- a report A sends about B, or signed as B without B's secret, or (RabbitMQ) published under B's
  user, is refused: B's rows are never written.

Isolation: nothing existing on either broker is changed. RabbitMQ: a virtual host and users whose
names start with this run's prefix, deleted afterwards. Redis: the default user is left as it is;
ACL users with this run's prefix, a database claimed as test stacks claim theirs (tests/stack.py),
and only this run's keys are deleted afterwards.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from django.conf import settings as django_settings
from django.db import connection
from kombu import Connection, Exchange, Producer, Queue

from cloud.compute.models import ComputeNode, Service
from cloud.enrollment import host_credentials, join_tokens
from compute_agent import messages as msg
from compute_agent.env_file import read_env_file
from compute_agent.reporter import CeleryReporter, HostIdentity
from compute_agent.worker import AgentConfig, create_app
from tests.integration.helpers import wait_until
from tests.stack import REDIS_BASE

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
RUN = secrets.token_hex(3)
PREFIX = f"kumo-it-enroll-{RUN}-"  # every broker user, and the RabbitMQ vhost, of this run
HOST_A, HOST_B = f"it{RUN}-a", f"it{RUN}-b"


def _rabbitmqctl(*args: str, stdin: str | None = None, check: bool = True) -> str:
    done = subprocess.run(["rabbitmqctl", "-q", *args], input=stdin, capture_output=True,
                          text=True, timeout=60, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)}: {done.stderr or done.stdout}")
    return done.stdout


@dataclass
class Broker:
    kind: str
    control_url: str  # the control plane's own credential

    def is_rabbitmq(self) -> bool:
        return self.kind == "rabbitmq"


@contextlib.contextmanager
def _rabbitmq() -> Iterator[Broker]:
    vhost, user, password = f"{PREFIX}vhost", f"{PREFIX}control", secrets.token_urlsafe(16)
    _rabbitmqctl("add_vhost", vhost)
    try:
        _rabbitmqctl("add_user", user, stdin=password)
        _rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")
        yield Broker("rabbitmq", f"amqp://{user}:{password}@127.0.0.1:5672/{quote(vhost, safe='')}")
    finally:
        _rabbitmqctl("delete_vhost", vhost, check=False)
        for line in _rabbitmqctl("list_users", check=False).splitlines():
            name = line.split("\t")[0]
            if name.startswith(PREFIX):
                _rabbitmqctl("delete_user", name, check=False)


@contextlib.contextmanager
def _redis() -> Iterator[Broker]:
    registry = redis.Redis.from_url(f"{REDIS_BASE}/0")
    claim = "kumo:it:redis-db:{}"
    number = next((n for n in range(15, 0, -1)
                   if registry.set(claim.format(n), f"{PREFIX}redis", nx=True, ex=3600)), None)
    if number is None:
        pytest.fail("every Redis database 1-15 is claimed by a running test stack")
    url = f"{REDIS_BASE}/{number}"
    keys = [msg.CONDUCTOR_QUEUE, f"_kombu.binding.{msg.CONDUCTOR_QUEUE}", "unacked",
            "unacked_index", "unacked_mutex"]
    for host in (HOST_A, HOST_B):
        queue = msg.compute_queue(host)
        keys += [queue, f"_kombu.binding.{queue}", *msg.redis_unacked_keys(host).values()]
        keys += [f"{queue}\x06\x16{level}" for level in (3, 6, 9)]
    client = redis.Redis.from_url(url)
    try:
        assert not client.exists(*keys), f"Redis database {number} holds this test's keys"
        yield Broker("redis", url)
    finally:
        client.delete(*keys)
        for name in client.execute_command("ACL", "USERS"):
            name = name.decode() if isinstance(name, bytes) else name
            if name.startswith(PREFIX):
                client.execute_command("ACL", "DELUSER", name)
        registry.delete(claim.format(number))


@pytest.fixture(params=["rabbitmq", "redis"])
def broker(request, settings) -> Iterator[Broker]:
    with (_rabbitmq() if request.param == "rabbitmq" else _redis()) as made:
        settings.CELERY_BROKER_URL = made.control_url
        settings.KUMO_BROKER_CREDENTIALS = "auto"
        settings.KUMO_HOST_BROKER_URL = ""
        settings.KUMO_BROKER_USER_PREFIX = PREFIX
        settings.KUMO_REQUIRE_HOST_CREDENTIALS = False
        yield made


@dataclass
class Joined:
    host: str
    env_file: Path
    values: dict[str, str]

    @property
    def url(self) -> str:
        return self.values["CELERY_BROKER_URL"]

    @property
    def identity(self) -> HostIdentity:
        identity = self.config().identity
        assert identity is not None
        return identity

    def config(self) -> AgentConfig:
        return AgentConfig(host=self.host, libvirt_uri="test:///default", broker_url=self.url,
                           host_secret=self.values["KUMO_HOST_SECRET"])

    def connection(self) -> Connection:
        """A kombu connection with this host's credential, as its agent's Celery opens it."""
        options = ({"confirm_publish": True} if self.url.startswith("amqp")
                   else msg.redis_unacked_keys(self.host))
        return Connection(self.url, transport_options=options, connect_timeout=5)


def _join(live_server, host: str, workdir: Path) -> Joined:
    """`python -m compute_agent join URL TOKEN --no-start` on a new machine, as the docs say."""
    token = join_tokens.issue(host).token
    env_file = workdir / f"{host}.env"
    done = subprocess.run(
        [sys.executable, "-m", "compute_agent", "join", live_server.url, token, "--no-start",
         "--config", str(env_file), "--libvirt-uri", "test:///default", "--host-ip", "127.0.0.1"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    assert token not in done.stdout + done.stderr
    assert env_file.stat().st_mode & 0o777 == 0o600
    values = read_env_file(env_file)
    assert values["KUMO_COMPUTE_HOST"] == host
    assert values["KUMO_HOST_SECRET"] not in done.stdout + done.stderr
    return Joined(host, env_file, values)


@pytest.fixture
def hosts(live_server, broker, tmp_path) -> tuple[Joined, Joined]:
    return _join(live_server, HOST_A, tmp_path), _join(live_server, HOST_B, tmp_path)


def _control_declares_queues(broker: Broker) -> None:
    """What the control plane's workers declare: the conductor's queue (its `conductor` exchange)
    and, when it first sends them work, the hosts' queues."""
    with Connection(broker.control_url, connect_timeout=5) as conn:
        channel = conn.default_channel
        Queue(msg.CONDUCTOR_QUEUE, Exchange(msg.CONDUCTOR_QUEUE, "direct"),
              msg.CONDUCTOR_QUEUE)(channel).declare()
        for host in (HOST_A, HOST_B):
            queue = msg.compute_queue(host)
            Queue(queue, Exchange(queue, "direct"), queue)(channel).declare()


def _send_work(broker: Broker, host: str, body: dict) -> None:
    with Connection(broker.control_url, connect_timeout=5) as conn:
        Producer(conn.default_channel).publish(body, exchange="", routing_key=msg.compute_queue(host),
                                               serializer="json")


def _denied(attempt) -> str:
    """Run `attempt`; the broker's refusal, which it must raise."""
    try:
        attempt()
    except Exception as exc:  # noqa: BLE001 - amqp, kombu and redis errors share no base class
        return f"{type(exc).__name__}: {exc}"
    raise AssertionError("the broker allowed it")


def _is_refusal(text: str) -> bool:
    return any(word in text for word in ("ACCESS_REFUSED", "AccessRefused", "NOPERM",
                                         "NoPermission", "PRECONDITION_FAILED",
                                         "PreconditionFailed"))


def _report(host: str, vcpus: int = 8) -> msg.HostReport:
    return msg.HostReport(host=host, hypervisor_type="QEMU", hypervisor_version=8002000,
                          hypervisor_hostname=f"{host}.test", host_ip="127.0.0.1", vcpus=vcpus,
                          memory_mb=4096, local_gb=40)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def _process(name: str, argv: list[str], env: dict[str, str], workdir: Path) -> Iterator[Path]:
    log_path = workdir / f"{name}.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        yield log_path
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@contextlib.contextmanager
def _conductor(broker: Broker, workdir: Path) -> Iterator[Path]:
    """The conductor as production runs it, on the test database and the test broker."""
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "DJANGO_SECRET_KEY": django_settings.SECRET_KEY,  # the hosts' secrets derive from it
        "CELERY_BROKER_URL": broker.control_url,
        "KUMO_BROKER_USER_PREFIX": PREFIX,
        "KUMO_VAR_DIR": str(workdir),
        "KUMO_OUTBOX_RELAY_INTERVAL": "3600",
    }
    argv = [sys.executable, "-m", "celery", "-A", "cloud", "worker", "-Q", msg.CONDUCTOR_QUEUE,
            "-n", f"conductor-{RUN}@it", "--pool", "solo", "-l", "info", "--without-gossip",
            "--without-mingle", "--without-heartbeat"]
    with _process("conductor", argv, env, workdir) as log:
        wait_until(lambda: "ready." in log.read_text(), timeout=60, what="the conductor")
        yield log


def _node(host: str) -> ComputeNode | None:
    return ComputeNode.objects.filter(host=host).first()


# --- the tests


def test_a_host_consumes_its_own_queue_and_its_reports_reach_the_conductor(
        broker, hosts, tmp_path):
    a, _ = hosts
    _control_declares_queues(broker)
    # kombu with A's credential takes work from A's queue
    _send_work(broker, HOST_A, {"hello": "a"})
    with a.connection() as conn, conn.SimpleQueue(msg.compute_queue(HOST_A)) as queue:
        got = queue.get(timeout=10)
        got.ack()
        assert got.payload == {"hello": "a"}

    with _conductor(broker, tmp_path):
        # the real agent, started from the file join wrote
        env = {**os.environ, "KUMO_INSTANCES_DIR": str(tmp_path / "instances"),
               "KUMO_HEARTBEAT_INTERVAL": "1", "KUMO_COMPUTE_CONCURRENCY": "2"}
        for key in ("CELERY_BROKER_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"):
            env.pop(key, None)
        argv = [sys.executable, "-m", "compute_agent", "--config", str(a.env_file)]
        with _process("agent-a", argv, env, tmp_path) as agent_log:
            node = wait_until(lambda: _node(HOST_A), timeout=60,
                              what=f"host A's report applied (agent log: {agent_log})")
            assert node.host_ip == "127.0.0.1"
            # work sent to A's queue by the control plane is taken and run by A's agent
            task_id = str(uuid.uuid4())
            request = msg.ConsoleOutputRequest(request_id="req-it", instance_uuid=str(uuid.uuid4()))
            control = create_app(AgentConfig(host="control", libvirt_uri="test:///default",
                                             broker_url=broker.control_url))
            control.send_task(msg.TASK_CONSOLE_OUTPUT, args=[request.to_dict()],
                              queue=msg.compute_queue(HOST_A), task_id=task_id)
            wait_until(lambda: f"[{task_id}] succeeded" in agent_log.read_text(), timeout=30,
                       what="A's agent running work from its queue")
            log = agent_log.read_text()
            assert "ACCESS_REFUSED" not in log and "NOPERM" not in log, log
    assert not Service.objects.filter(host=HOST_B).exists()


def test_a_host_cannot_read_another_hosts_queue_nor_the_conductors(broker, hosts):
    a, _ = hosts
    _control_declares_queues(broker)
    _send_work(broker, HOST_B, {"secret": "for b"})

    def read(queue_name: str) -> None:
        with a.connection() as conn, conn.SimpleQueue(queue_name) as queue:
            queue.get(timeout=2)

    for queue_name in (msg.compute_queue(HOST_B), msg.CONDUCTOR_QUEUE):
        refusal = _denied(lambda queue_name=queue_name: read(queue_name))
        assert _is_refusal(refusal), refusal

    def put_work_in_b() -> None:
        with a.connection() as conn:
            Producer(conn.default_channel).publish({"evil": 1}, exchange="",
                                                   routing_key=msg.compute_queue(HOST_B))
            if not broker.is_rabbitmq():
                return
            conn.default_channel.basic_qos(0, 1, False)  # a round trip: the refusal arrives

    refusal = _denied(put_work_in_b)
    assert _is_refusal(refusal), refusal
    if not broker.is_rabbitmq():
        # a script runs with the user's rules: it cannot take B's work either
        client = redis.Redis.from_url(a.url)
        refusal = _denied(lambda: client.eval("return redis.call('rpop', KEYS[1])", 1,
                                              msg.compute_queue(HOST_B)))
        assert _is_refusal(refusal), refusal
    # B's message is still there, and only it
    with Connection(broker.control_url) as conn, conn.SimpleQueue(msg.compute_queue(HOST_B)) as q:
        got = q.get(timeout=5)
        got.ack()
        assert got.payload == {"secret": "for b"}
        with pytest.raises(q.Empty):
            q.get(timeout=1)


def test_a_report_sent_as_another_host_is_refused_by_the_conductor(broker, hosts, tmp_path):
    a, b = hosts
    _control_declares_queues(broker)
    reporter = CeleryReporter(create_app(a.config()), a.identity)
    # as A (its own user and signature), about B
    reporter.host_report(_report(HOST_B, vcpus=666))
    # signed as B without B's secret (on RabbitMQ, still published by A's user)
    forged = HostIdentity(host=HOST_B, secret="guessed", amqp_user=a.identity.amqp_user)
    CeleryReporter(create_app(a.config()), forged).host_report(_report(HOST_B, vcpus=667))
    if broker.is_rabbitmq():
        # published under B's user: the broker itself refuses (user_id must be the sender's)
        def as_b_user() -> None:
            with a.connection() as conn:
                Producer(conn.default_channel).publish(
                    {"x": 1}, exchange=msg.CONDUCTOR_QUEUE, routing_key=msg.CONDUCTOR_QUEUE,
                    user_id=b.identity.amqp_user)

        refusal = _denied(as_b_user)
        assert "PRECONDITION_FAILED" in refusal or "PreconditionFailed" in refusal, refusal
    # then an honest report from A, behind them in the conductor's queue
    reporter.host_report(_report(HOST_A, vcpus=777))
    with _conductor(broker, tmp_path) as log:
        wait_until(lambda: (node := _node(HOST_A)) is not None and node.vcpus == 777,
                   timeout=60, what="A's own report applied")
        text = log.read_text()
    assert _node(HOST_B) is None
    assert not Service.objects.filter(host=HOST_B).exists()
    assert text.count(f"refused conductor.host_report for host '{HOST_B}'") == 2, text


def test_a_revoked_host_cannot_connect_any_more(broker, hosts):
    a, b = hosts
    host_credentials.revoke(HOST_A)

    def connect() -> None:
        with a.connection() as conn:
            conn.ensure_connection(max_retries=1)
            conn.default_channel.basic_qos(0, 1, False) if broker.is_rabbitmq() else \
                conn.default_channel.client.ping()

    refusal = _denied(connect)
    assert any(word in refusal for word in ("ACCESS_REFUSED", "AccessRefused", "WRONGPASS",
                                            "invalid username-password", "authentication")), \
        refusal
    with b.connection() as conn:  # B is untouched
        conn.ensure_connection(max_retries=1)
