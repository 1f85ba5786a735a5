"""A whole Kumo stack as real processes, for integration and compatibility tests.

A fresh PostgreSQL database, a Redis database of its own, the web server (gunicorn), scheduler and
conductor Celery workers (the conductor runs beat's schedule), and compute agents on libvirt's test
driver — each a subprocess, driven only through HTTP. Logs go to artifacts/<stack name>/ so a
failed CI run can be read.

The broker is the machine's Redis (a database of the stack's own) or, with `broker="rabbitmq"`,
the machine's RabbitMQ (a virtual host of the stack's own). With `broker_link=True` every process
reaches its broker through a `tests.faults.BrokerLink`, which the fault tests cut to take the
broker away from this stack alone.

With `simulated_hosts=N` the agents are N simulated hosts instead (simhosts: each a network and
mount namespace with its own libvirtd running real qemu guests), made when the stack starts and
removed, guests and all, when it stops. That needs root and libvirtd/qemu installed.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import redis
import requests

import simhosts
import simhosts.storage
from tests.faults import BrokerLink

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
PG_ADMIN_URL = os.environ.get("KUMO_IT_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_BASE = os.environ.get("KUMO_IT_REDIS", "redis://127.0.0.1:6379")
RABBITMQ = ("127.0.0.1", int(os.environ.get("KUMO_IT_RABBITMQ_PORT", "5672")))
# Test stacks give up on stuck work in seconds, not minutes (cloud/conductor/reconciler.py).
FAST_RECOVERY = {
    "KUMO_RECONCILE_INTERVAL": "2",
    "KUMO_OUTBOX_RELAY_INTERVAL": "1",
    "KUMO_TASK_DEADLINES": "scheduling=10,spawning=30,deleting=15,default=60",
}

# A test-driver host description: libvirt builds a separate in-process host from it per connection,
# so each agent reports the capacity we choose.
HOST_XML = """<node>
  <cpu><nodes>1</nodes><sockets>1</sockets><cores>{cpus}</cores><threads>1</threads>
  <active>{cpus}</active><mhz>2000</mhz><model>kumo-test</model></cpu>
  <memory>{memory_kib}</memory>
</node>
"""


# The migrated database of this process's stacks (Stack._migrated_template), once made.
_TEMPLATE: str | None = None


def _drop_database(name: str) -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class AgentSpec:
    host: str
    cpus: int = 4
    memory_mb: int = 2048
    # None: a test-driver host of the size above; else a real hypervisor, e.g. qemu:///system.
    libvirt_uri: str | None = None


def procfile_threads(queue: str) -> str:
    """The thread count (`-c`) the Procfile gives the worker of this queue: the stacks run the
    scheduler and conductor as a deployment does, and the Procfile is the one place that says how."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        words = line.split()
        if "-Q" in words and words[words.index("-Q") + 1] == queue and "-c" in words:
            return words[words.index("-c") + 1]
    raise LookupError(f"the Procfile runs no worker of queue {queue!r} with -c")


@dataclass
class Stack:
    name: str
    agents: list[AgentSpec]
    schedulers: int = 2
    broker: str = "redis"  # or "rabbitmq"
    broker_link: bool = False
    extra_env: dict[str, str] = field(default_factory=dict)
    simulated_hosts: int = 0
    # With simulated hosts: this many container hosts lxc-1.. too (libvirt LXC, simhosts up --lxc).
    container_hosts: int = 0
    # A volume host (python -m compute_agent volume, the nbd back end): on loopback beside the
    # agents, or with simulated hosts the storage host storage-1 on their fabric. 0 (the
    # default): none, so the stacks of tests that use no volume do not start one.
    volume_hosts: int = 0
    workdir: Path = field(init=False)
    hosts: list[simhosts.SimHost] = field(init=False, default_factory=list)
    storage_hosts: list[simhosts.storage.StorageHost] = field(init=False, default_factory=list)
    url: str = field(init=False, default="")
    procs: dict[str, subprocess.Popen] = field(init=False, default_factory=dict)
    argvs: dict[str, list[str]] = field(init=False, default_factory=dict)
    link: BrokerLink | None = field(init=False, default=None)
    env: dict[str, str] = field(init=False, default_factory=dict)
    admin_password: str = field(init=False, default="")
    demo_password: str = field(init=False, default="")
    # Simulated hosts failed on purpose (fail_host): their agents' deaths are no stack failure.
    failed_hosts: set[str] = field(init=False, default_factory=set)

    def __post_init__(self) -> None:
        self.db_name = f"kumo_it_{self.name}_{secrets.token_hex(3)}"
        self.redis_db = -1  # claimed in start()
        self.workdir = ROOT / "artifacts" / self.name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # A namespace name holds the tag: short, and unique to this stack.
        self.host_tag = f"it{secrets.token_hex(2)}"

    # --- lifecycle

    def start(self) -> Stack:
        shutil.rmtree(self.workdir, ignore_errors=True)
        (self.workdir / "var").mkdir(parents=True)
        self.redis_db = self._claim_redis_db()
        redis.Redis.from_url(f"{REDIS_BASE}/{self.redis_db}").flushdb()
        pg = PG_ADMIN_URL.rsplit("/", 1)[0]
        redis_url = f"{REDIS_BASE}/{self.redis_db}"
        broker_url = redis_url
        if self.broker == "rabbitmq":
            _rabbitmqctl("add_vhost", self.db_name)
            _rabbitmqctl("set_permissions", "-p", self.db_name, "guest", ".*", ".*", ".*")
            host, port = RABBITMQ
            if self.broker_link:
                self.link = BrokerLink(host, port)
                host, port = "127.0.0.1", self.link.port
            broker_url = f"amqp://guest:guest@{host}:{port}/{self.db_name}"
        elif self.broker_link:
            # Redis is the broker, the cache and the channel layer at once: all of it goes away.
            base = REDIS_BASE.removeprefix("redis://")
            host, _, port = base.partition(":")
            self.link = BrokerLink(host, int(port or 6379))
            redis_url = broker_url = f"redis://127.0.0.1:{self.link.port}/{self.redis_db}"
        self.env = {
            **os.environ,
            **FAST_RECOVERY,
            "DATABASE_URL": f"{pg}/{self.db_name}",
            "REDIS_URL": redis_url,
            "CELERY_BROKER_URL": broker_url,
            "KUMO_VAR_DIR": str(self.workdir / "var"),
            "KUMO_HEARTBEAT_INTERVAL": "1",
            # Guests' statistics every second, so diagnostics and charts have samples at once.
            "KUMO_GUEST_STATS_INTERVAL": "1",
            "KUMO_SERVICE_DOWN_TIME": "20",
            "KUMO_INTERNAL_URL": self.url,
            "KUMO_POWER_SYNC_GRACE": "3",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(40),
            # The simulated hosts' metadata proxies sign with it (they joined with no credential).
            "KUMO_METADATA_SECRET": secrets.token_urlsafe(32),
            # The simulated-hosts fencing driver (python -m simhosts fence) fences this stack's.
            "KUMO_SIMHOSTS_TAG": self.host_tag,
            "PYTHONUNBUFFERED": "1",
            # As scripts/run.sh: glibc's malloc keeps at most 2 arenas instead of one per thread
            # (8 x CPUs): ~5 MiB less in a stack of threaded processes (bench/README.md, "Memory").
            "MALLOC_ARENA_MAX": os.environ.get("MALLOC_ARENA_MAX", "2"),
            "PATH": f"{Path(PYTHON).parent}:{os.environ.get('PATH', '')}",
        }
        self.env.update(self.extra_env)
        self.env.pop("DJANGO_SETTINGS_MODULE", None)
        template = self._migrated_template(pg)
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.db_name}" TEMPLATE "{template}"')
        self._run([PYTHON, "manage.py", "bootstrap", "--output-dir", str(self.workdir),
                   "--public-url", self.url])
        self.admin_password = self._password_from(self.workdir / "openrc")
        # As the Procfile: uvicorn workers, websockets to Channels, HTTP to the WSGI app in threads.
        self._spawn("web", [
            PYTHON, "-m", "gunicorn", "cloud.asgi:application", "--bind", f"127.0.0.1:{self.port}",
            "-k", "cloud.web_worker.Worker", "--workers", os.environ.get("WEB_CONCURRENCY", "1"),
            "--timeout", "120",
        ])
        for i in range(self.schedulers):
            self._spawn(f"scheduler{i}", self._celery_worker("scheduler", f"scheduler{i}"))
        # As the Procfile: the conductor also runs beat's schedule (cloud/conductor/beat.py).
        self._spawn("conductor", self._celery_worker("conductor", "conductor"))
        for agent in self.agents:
            uri = agent.libvirt_uri
            if uri is None:
                xml = self.workdir / f"{agent.host}.xml"
                xml.write_text(HOST_XML.format(cpus=agent.cpus, memory_kib=agent.memory_mb * 1024))
                uri = f"test://{xml}"
            self._spawn(agent.host, [
                PYTHON, "-m", "compute_agent", "--host", agent.host,
                "--libvirt-uri", uri, "--heartbeat-interval", "1",
                "--instances-dir", str(self.workdir / "instances" / agent.host),
            ])
        if self.simulated_hosts:
            self.hosts = simhosts.up(self.host_tag, self.simulated_hosts,
                                     lxc=self.container_hosts)
            for sim in self.hosts:
                self._spawn_host_agent(sim)
            self.storage_hosts = simhosts.storage.up(self.host_tag, self.volume_hosts)
            for storage in self.storage_hosts:
                self._spawn(storage.name, simhosts.storage.agent_argv(
                    storage, PYTHON, ["--heartbeat-interval", "1"]))
        else:
            for i in range(1, self.volume_hosts + 1):
                self._spawn(f"volume-{i}", [
                    PYTHON, "-m", "compute_agent", "volume", "--host", f"volume-{i}",
                    "--backend", "nbd", "--export-address", "127.0.0.1",
                    "--export-port", str(free_port()), "--heartbeat-interval", "1",
                    "--volumes-dir", str(self._volumes_dir(i)),
                ])
        self._wait_for_web()
        self._wait_for_hypervisors(len(self.agents) + len(self.hosts))
        # Tests fill hosts on purpose; the admin project's default quota must not be what stops them.
        unlimited = {"instances": -1, "cores": -1, "ram": -1}
        admin_project = self.client().get("/identity/v3/auth/projects").json()["projects"]
        for project in admin_project:
            if project["name"] == "admin":
                self.client().put(f"/compute/v2.1/os-quota-sets/{project['id']}",
                                  {"quota_set": unlimited}).raise_for_status()
        return self

    @contextlib.contextmanager
    def running(self) -> Iterator[Stack]:
        """The started stack, stopped (and its database dropped) however the block ends."""
        try:
            yield self.start()
        finally:
            self.stop()

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if self.simulated_hosts:
            simhosts.down(self.host_tag)  # their guests, libvirtds, namespaces and directories
        else:
            # A volume host's qemu-storage-daemon outlives its agent, as on a real host.
            for i in range(1, self.volume_hosts + 1):
                subprocess.run([PYTHON, "-m", "compute_agent", "volume", "--stop-daemon",
                                "--volumes-dir", str(self._volumes_dir(i))], cwd=ROOT,
                               env=self.env or None, check=False, capture_output=True)
            shutil.rmtree(self.workdir / "volumes", ignore_errors=True)
        _drop_database(self.db_name)
        self._release_redis_db()
        if self.link is not None:
            self.link.close()
        if self.broker == "rabbitmq":
            _rabbitmqctl("delete_vhost", self.db_name, check=False)

    def _migrated_template(self, pg: str) -> str:
        """A database migrated once per test process, which each stack's database is copied from
        (CREATE DATABASE … TEMPLATE takes 0.1 s; `manage.py migrate` took 3-5 s of every stack's
        start). The migrations read no setting a stack changes, so every copy is what migrating
        it would have made. Dropped when the process exits."""
        global _TEMPLATE
        if _TEMPLATE is None:
            name = f"kumo_it_template_{os.getpid()}_{secrets.token_hex(3)}"
            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            atexit.register(_drop_database, name)
            self._run([PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"],
                      env={**self.env, "DATABASE_URL": f"{pg}/{name}"})
            _TEMPLATE = name
        return _TEMPLATE

    def _claim_redis_db(self) -> int:
        """A Redis database of this stack's own. Two stacks on one database would consume each
        other's queue messages (the queue names are the same), so each claims one with SET NX in
        database 0, released at stop; KUMO_IT_REDIS_DB forces a number."""
        forced = os.environ.get("KUMO_IT_REDIS_DB")
        if forced:
            return int(forced)
        registry = redis.Redis.from_url(f"{REDIS_BASE}/0")
        for number in range(1, 16):
            if registry.set(f"kumo:it:redis-db:{number}", self.db_name, nx=True, ex=7200):
                return number
        raise RuntimeError("every Redis database 1-15 is claimed by a running test stack")

    def _release_redis_db(self) -> None:
        registry = redis.Redis.from_url(f"{REDIS_BASE}/0")
        key = f"kumo:it:redis-db:{self.redis_db}"
        if registry.get(key) == self.db_name.encode():
            registry.delete(key)

    def kill(self, name: str) -> None:
        """SIGKILL: no warm shutdown, no acknowledgements, whatever it was doing."""
        proc = self.procs[name]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def restart(self, name: str) -> None:
        """Start a killed process again, as its supervisor would."""
        if self.procs[name].poll() is None:
            self.kill(name)
        self._spawn(name, self.argvs[name], mode="a")

    def alive(self) -> dict[str, bool]:
        """Whether each process that should be running is (a failed host's agent should not)."""
        return {name: proc.poll() is None for name, proc in self.procs.items()
                if name not in self.failed_hosts}

    def fail_host(self, name: str) -> None:
        """The simulated host dies (simhosts.fail): guests, libvirtd, its agent and what that
        started, all killed; its links cut."""
        self.failed_hosts.add(name)
        simhosts.fail(self.host_tag, name)
        proc = self.procs[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # anything of the agent's outside the host
        proc.wait()

    def recover_host(self, name: str) -> None:
        """The host comes back (simhosts.recover: links up, libvirtd started, its old guests shut
        off) and its agent is started again, as at start()."""
        simhosts.recover(self.host_tag, name)
        host = next(h for h in self.hosts if h.name == name)
        self._spawn_host_agent(host, mode="a")
        self.failed_hosts.discard(name)

    # --- helpers

    def _celery_worker(self, queue: str, name: str) -> list[str]:
        threads = procfile_threads(queue)
        return [PYTHON, "-m", "cloud.worker", "-Q", queue, "-n", f"{name}@it",
                "--pool", "threads", "-c", threads, "-l", "info", "--without-gossip",
                "--without-mingle"]

    def _volumes_dir(self, number: int) -> Path:
        return self.workdir / "volumes" / f"volume-{number}"

    def _run(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        with open(self.workdir / "setup.log", "a") as log:
            subprocess.run(argv, cwd=ROOT, env=env or self.env, check=True, stdout=log,
                           stderr=log)

    def _spawn_host_agent(self, host: simhosts.SimHost, mode: str = "w") -> None:
        # Its command names the host's libvirtd, whose mount namespace it enters: a new one each
        # time the host comes back.
        self._spawn(host.name, simhosts.agent_argv(host, PYTHON, ["--heartbeat-interval", "1"]),
                    mode=mode)

    def _spawn(self, name: str, argv: list[str], mode: str = "w") -> None:
        self.argvs[name] = argv
        log = open(self.workdir / f"{name}.log", mode)  # noqa: SIM115 - lives as long as the process
        self.procs[name] = subprocess.Popen(
            argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @staticmethod
    def _password_from(openrc: Path) -> str:
        for line in openrc.read_text().splitlines():
            if line.startswith("export OS_PASSWORD="):
                return line.split("=", 1)[1].strip().strip("'\"")
        raise RuntimeError(f"no OS_PASSWORD in {openrc}")

    def _check_alive(self) -> None:
        dead = {n: p.returncode for n, p in self.procs.items()
                if p.poll() is not None and n not in self.failed_hosts}
        if dead:
            raise RuntimeError(f"stack processes exited: {dead}; see {self.workdir}")

    def _wait_for_web(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                if requests.get(f"{self.url}/identity", timeout=10).status_code == 300:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise TimeoutError("web did not come up")

    def _wait_for_hypervisors(self, count: int, timeout: float = 60) -> None:
        api = self.client()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            nodes = api.get("/compute/v2.1/os-hypervisors").json()["hypervisors"]
            if len([n for n in nodes if n["state"] == "up"]) >= count:
                return
            time.sleep(0.3)
        raise TimeoutError(f"{count} hypervisors did not report in")

    def token(self, user: str = "admin", password: str | None = None, project: str = "admin") -> str:
        body = {"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": user, "domain": {"name": "Default"},
                "password": password if password is not None else self.admin_password}}},
            "scope": {"project": {"name": project, "domain": {"name": "Default"}}}}}
        response = requests.post(f"{self.url}/identity/v3/auth/tokens", json=body, timeout=30)
        response.raise_for_status()
        return response.headers["X-Subject-Token"]

    def client(self, version: str = "2.60", **token_args) -> ApiClient:
        return ApiClient(self.url, self.token(**token_args), version)

    def openstack_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        env.update({
            "OS_AUTH_URL": f"{self.url}/identity/v3", "OS_USERNAME": "admin",
            "OS_PASSWORD": self.admin_password, "OS_PROJECT_NAME": "admin",
            "OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default",
            "OS_IDENTITY_API_VERSION": "3", "OS_REGION_NAME": "RegionOne",
            "OS_INTERFACE": "public",
        })
        return env


class ApiClient:
    def __init__(self, url: str, token: str, version: str):
        self.url = url
        self.session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_maxsize=32)
        self.session.mount("http://", adapter)
        self.session.headers.update({
            "X-Auth-Token": token, "OpenStack-API-Version": f"compute {version}",
        })

    def request(self, method: str, path: str, **kw) -> requests.Response:
        kw.setdefault("timeout", 60)
        return self.session.request(method, self.url + path, **kw)

    def get(self, path: str, **kw) -> requests.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, body=None, **kw) -> requests.Response:
        return self.request("POST", path, json=body, **kw)

    def put(self, path: str, body=None, **kw) -> requests.Response:
        return self.request("PUT", path, json=body, **kw)

    def delete(self, path: str, **kw) -> requests.Response:
        return self.request("DELETE", path, **kw)

    def upload_image(self, name: str, data: bytes, disk_format: str = "qcow2",
                     container_format: str = "bare", **properties: str) -> str:
        created = self.post("/image/v2/images", {
            "name": name, "disk_format": disk_format, "container_format": container_format,
            **properties})
        created.raise_for_status()
        image_id = created.json()["id"]
        put = self.request("PUT", f"/image/v2/images/{image_id}/file", data=data,
                           headers={"Content-Type": "application/octet-stream"})
        put.raise_for_status()
        return image_id

    def wait_for(self, server_id: str, statuses: set[str], timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            server = self.get(f"/compute/v2.1/servers/{server_id}").json()["server"]
            if server["status"] in statuses and server["OS-EXT-STS:task_state"] is None:
                return server
            time.sleep(0.2)
        raise TimeoutError(f"server {server_id} never reached {statuses}: {server['status']}")

    def wait_gone(self, server_id: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.get(f"/compute/v2.1/servers/{server_id}").status_code == 404:
                return
            time.sleep(0.2)
        raise TimeoutError(f"server {server_id} was never deleted")


def small_qcow2(path: Path, size: str = "16M") -> Path:
    """A real (empty) qcow2 made by qemu-img (setup installs qemu-utils)."""
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), size], check=True)
    return path


def qcow2_bytes() -> bytes:
    """The bytes of a small, valid, empty qcow2 image (the image API inspects what it stores)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        return small_qcow2(Path(tmp) / "disk.qcow2").read_bytes()


def _rabbitmqctl(*args: str, check: bool = True) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=check, capture_output=True, timeout=60)
