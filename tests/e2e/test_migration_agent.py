"""Migrations between simulated hosts with real qemu guests, through the real compute agents.

Three hosts (`simhosts`: each a network and a mount namespace with its own libvirtd) run one
compute agent each, started exactly as a deployment on them would start it
(`simhosts.hosts.agent_argv`: in the host's mount namespace, so that qemu-img, the image cache and
the instance files see what its libvirtd sees). The agents talk to a Redis database of this
module's own; the test plays the control plane on it: it sends each step's message to a host's
queue, as the conductor would, and reads every report the agents send to the conductor's queue.
Nothing of libvirt or qemu is mocked. The choice over managers in the test process: a process
cannot enter another mount namespace once it has threads, and the agents' own processes also
prove their options, their worker threads (an abort runs beside the copy) and their reports.

The guest (scripts/build_image.sh) runs its user data: it writes a marker once on its disk, prints
it and the disk's size at every boot, then prints `TICK n` every second on its serial console.

- live: the counter goes on, without a gap, on the destination's console; the migration time and
  the downtime (from the guest's counter and from libvirt's job) are printed
- abort: the copy stops, the guest stays on its source, nothing is left on the destination
- cold, then revert; a cold resize to another host, then confirm: the disk's marker travels
- the destination's libvirtd killed mid-copy: the guest runs on, nothing is left on the target

Figures are printed and written to $KUMO_ARTIFACTS_DIR/migration/figures.json, not asserted.
Skipped only when not root (namespaces need CAP_SYS_ADMIN and CAP_NET_ADMIN); as root, a host
that cannot be made fails the test.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import http.server
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from compute_agent import messages as msg
from simhosts import hosts as simhosts
from tests.e2e.conftest import BANNER, BOOT_TIMEOUT, REPO

pytestmark = pytest.mark.e2e

libvirt = pytest.importorskip("libvirt")
redis = pytest.importorskip("redis")

TAG = "e2emig"
REDIS_BASE = os.environ.get("KUMO_IT_REDIS", "redis://127.0.0.1:6379")
ARTIFACTS = Path(os.environ.get("KUMO_ARTIFACTS_DIR", REPO / "artifacts")) / "migration"
STEP_TIMEOUT = 120.0
FIGURES: dict[str, object] = {}

USER_DATA = """#!/bin/sh
# A marker on the disk, written at the first boot, and 1 Hz ticks on the serial console.
m=$(dd if=/dev/vda bs=512 skip=200000 count=1 2>/dev/null | tr -dc 'A-Za-z0-9-' | head -c 48)
if [ -z "$m" ]; then
    m="MARK-$(cat /proc/sys/kernel/random/uuid)"
    printf '%s' "$m" | dd of=/dev/vda bs=512 seek=200000 conv=notrunc,fsync 2>/dev/null
fi
echo "DISKMARK $m"
echo "DISKSIZE $(cat /sys/block/vda/size)"
n=0
while :; do
    n=$((n + 1))
    echo "TICK $n"
    sleep 1
done
"""


# --- the test's control plane ----------------------------------------------------------------


@dataclass
class Received:
    at: float
    task: str
    payload: dict


@dataclass
class Conductor:
    """Reads the conductor queue: every instance event and host report the agents send."""

    url: str
    received: list[Received] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)
    stopping: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        from kombu import Connection, Exchange, Queue

        queue = Queue(msg.CONDUCTOR_QUEUE, Exchange(msg.CONDUCTOR_QUEUE, type="direct"),
                      routing_key=msg.CONDUCTOR_QUEUE)
        with Connection(self.url) as conn, conn.Consumer(queue, callbacks=[self._on_message],
                                                         accept=["json"]):
            while not self.stopping.is_set():
                try:
                    conn.drain_events(timeout=0.5)
                except TimeoutError:
                    continue

    def _on_message(self, body: list, message: object) -> None:
        task = message.headers.get("task", "")
        with self.changed:
            self.received.append(Received(time.monotonic(), task, body[0][0]))
            self.changed.notify_all()
        message.ack()

    def mark(self) -> int:
        with self.changed:
            return len(self.received)

    def events(self, since: int = 0) -> list[msg.InstanceEvent]:
        with self.changed:
            return [msg.InstanceEvent.from_dict(r.payload) for r in self.received[since:]
                    if r.task == msg.TASK_INSTANCE_EVENT]

    def wait(self, found: Callable[[Received], bool], since: int, timeout: float,
             what: str) -> Received:
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                for received in self.received[since:]:
                    if found(received):
                        return received
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {what} within {timeout:.0f} s")
                self.changed.wait(left)

    def wait_event(self, instance_uuid: str, names: tuple[str, ...], since: int,
                   timeout: float = STEP_TIMEOUT) -> tuple[msg.InstanceEvent, float]:
        """The first of `names` (or a failure) reported for the instance after `since`."""
        ends = (*names, msg.EVENT_ACTION_FAILED, msg.EVENT_SPAWN_FAILED)
        received = self.wait(
            lambda r: r.task == msg.TASK_INSTANCE_EVENT
            and r.payload["instance_uuid"] == instance_uuid and r.payload["event"] in ends,
            since, timeout, f"{'/'.join(names)} for {instance_uuid}")
        return msg.InstanceEvent.from_dict(received.payload), received.at

    def last_report(self, host: str) -> msg.HostReport:
        with self.changed:
            for received in reversed(self.received):
                if received.task == msg.TASK_HOST_REPORT and received.payload["host"] == host:
                    return msg.HostReport.from_dict(received.payload)
        raise AssertionError(f"{host} never reported")


@dataclass
class Cloud:
    hosts: dict[str, simhosts.SimHost]
    agents: dict[str, subprocess.Popen]
    conductor: Conductor
    sender: object
    image: msg.ImageRef

    def send(self, host: str, task: str, request: msg.Message) -> None:
        self.sender.send_task(task, args=[request.to_dict()],
                              queue=msg.compute_queue(host))

    def step(self, host: str, task: str, request: msg.MigrationRequest | msg.Message,
             *outcomes: str, timeout: float = STEP_TIMEOUT) -> msg.InstanceEvent:
        """Send one step and wait for its outcome; fail with the agent's log if it failed."""
        mark = self.conductor.mark()
        self.send(host, task, request)
        event, _ = self.conductor.wait_event(
            request.instance_uuid, outcomes, mark, timeout)
        assert event.event in outcomes, f"{event.event}: {event.message}\n{self.log(host)}"
        if isinstance(request, msg.MigrationRequest):
            assert event.migration_id == request.migration_id
        return event

    def log(self, host: str) -> str:
        return (ARTIFACTS / f"{host}.log").read_text(errors="replace")[-3000:]

    def conn(self, host: str) -> object:
        return libvirt.open(self.hosts[host].uri)

    def domain_state(self, host: str, instance_uuid: str) -> str | None:
        """libvirt's own view (not the agent's): None when the host has no such domain."""
        conn = self.conn(host)
        try:
            state, _ = conn.lookupByUUIDString(instance_uuid).state()
            return {libvirt.VIR_DOMAIN_RUNNING: "running", libvirt.VIR_DOMAIN_PAUSED: "paused",
                    libvirt.VIR_DOMAIN_SHUTOFF: "shutoff"}.get(state, str(state))
        except libvirt.libvirtError:
            return None
        finally:
            conn.close()

    def instance_files(self, host: str, instance_uuid: str) -> list[str]:
        instances = self.hosts[host].dir / "instances"
        return [os.fspath(p.relative_to(instances)) for p in (
            instances / instance_uuid, instances / "_incoming" / f"{instance_uuid}.disk")
            if p.exists()]

    def console(self, host: str, instance_uuid: str) -> Path:
        return self.hosts[host].dir / "instances" / instance_uuid / "console.log"

    def boot(self, host: str, **sizes: int) -> msg.SpawnRequest:
        request = msg.SpawnRequest(
            request_id=f"req-{uuid.uuid4().hex[:8]}", instance_uuid=str(uuid.uuid4()),
            name="ticker", hostname="ticker", vcpus=1, memory_mb=sizes.get("memory_mb", 128),
            root_gb=sizes.get("root_gb", 1), image=self.image,
            user_data=base64.b64encode(USER_DATA.encode()).decode(),
        )
        event = self.step(host, msg.TASK_SPAWN, request, msg.EVENT_SPAWNED)
        assert event.power_state == msg.POWER_RUNNING
        wait_for(self.console(host, request.instance_uuid), "TICK 2")
        return request

    def destroy(self, host: str, instance_uuid: str) -> None:
        self.step(host, msg.TASK_DESTROY, msg.DestroyRequest("req-destroy", instance_uuid),
                  msg.EVENT_DESTROYED)
        assert self.domain_state(host, instance_uuid) is None
        assert self.instance_files(host, instance_uuid) == []

    def clean(self, instance_uuid: str) -> None:
        """After a test, whatever happened in it: the instance destroyed on every host."""
        for host in self.hosts:
            try:
                self.destroy(host, instance_uuid)
            except AssertionError as exc:
                print(f"cleanup of {instance_uuid} on {host}: {exc}", file=sys.__stderr__)


def migration(spawn: msg.SpawnRequest, source: str, dest: str, cloud: Cloud, *,
              live: bool = True, **changes: int) -> msg.MigrationRequest:
    return msg.MigrationRequest(
        request_id=f"req-mig-{uuid.uuid4().hex[:6]}", instance_uuid=spawn.instance_uuid,
        migration_id=str(uuid.uuid4().int % 10**9), source_host=source, dest_host=dest,
        dest_uri=cloud.hosts[dest].peer_uri, live=live,
        spawn=msg.SpawnRequest.from_dict(spawn.to_dict() | changes), stop_timeout=30,
    )


def wait_for(path: Path, needle: str, timeout: float = BOOT_TIMEOUT, since: int = 0) -> str:
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        try:
            text = path.read_text(errors="replace")
        except FileNotFoundError:
            text = ""
        if needle in text[since:]:
            return text
        time.sleep(0.1)
    raise AssertionError(f"{needle!r} not in {path} after {timeout:.0f} s; it ends with:\n"
                         f"{text[-1500:]}")


# Not anchored at the line's start: the console's shell may have printed its prompt there.
def ticks(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"TICK (\d+)\r?\n", text)]


def marker(text: str) -> str:
    found = re.findall(r"DISKMARK (MARK-[0-9a-f-]+)\r?\n", text)
    assert found, f"no DISKMARK in:\n{text[-800:]}"
    return found[-1]


def figure(name: str, value: object) -> None:
    FIGURES[name] = value


# --- fixtures ----------------------------------------------------------------------------------


def _claim_redis_db() -> tuple[int, str]:
    """A database of this module's own (tests/stack.py's registry in database 0)."""
    owner = f"e2e-migration-{os.getpid()}"
    registry = redis.Redis.from_url(f"{REDIS_BASE}/0")
    for number in range(1, 16):
        if registry.set(f"kumo:it:redis-db:{number}", owner, nx=True, ex=7200):
            return number, owner
    raise RuntimeError("every Redis database 1-15 is claimed by a running test stack")


@pytest.fixture(scope="module")
def image_url(guest_image: Path) -> Iterator[str]:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler,
                                directory=str(guest_image.parent))
    handler.log_message = lambda *args: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/{guest_image.name}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def cloud(guest_image: Path, image_url: str) -> Iterator[Cloud]:
    if os.geteuid() != 0:
        pytest.skip("simulated hosts need root (network and mount namespaces)")
    from celery import Celery

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    number, owner = _claim_redis_db()
    url = f"{REDIS_BASE}/{number}"
    redis.Redis.from_url(url).flushdb()
    conductor = Conductor(url)
    listener = threading.Thread(target=conductor.run, name="conductor", daemon=True)
    listener.start()
    sender = Celery("e2e-migration", broker=url, fixups=[], set_as_current=False)
    sender.conf.update(task_serializer="json", accept_content=["json"])
    data = guest_image.read_bytes()
    image = msg.ImageRef(id="kumo-tiny", checksum=hashlib.md5(data).hexdigest(),
                         disk_format="qcow2", size=len(data), url=image_url, token="e2e")
    agents: dict[str, subprocess.Popen] = {}
    try:
        started = time.monotonic()
        made = {host.name: host for host in simhosts.up(TAG, 3)}
        figure("3 hosts up (s)", round(time.monotonic() - started, 2))
        for name, host in made.items():
            argv = simhosts.agent_argv(host, sys.executable, [
                "--broker", url, "--domain-type", "qemu", "--heartbeat-interval", "2",
                "--concurrency", "3"])
            with open(ARTIFACTS / f"{name}.log", "wb") as log:
                agents[name] = subprocess.Popen(argv, cwd=REPO, stdout=log,
                                                stderr=subprocess.STDOUT, start_new_session=True)
        for name in made:
            conductor.wait(lambda r, n=name: r.task == msg.TASK_HOST_REPORT
                           and r.payload["host"] == n, 0, 90, f"a host report from {name}")
        yield Cloud(made, agents, conductor, sender, image)
    finally:
        for process in agents.values():
            _stop(process)
        conductor.stopping.set()
        listener.join(5)
        simhosts.down(TAG)
        registry = redis.Redis.from_url(f"{REDIS_BASE}/0")
        if registry.get(f"kumo:it:redis-db:{number}") == owner.encode():
            registry.delete(f"kumo:it:redis-db:{number}")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "figures.json").write_text(json.dumps(FIGURES, indent=2) + "\n")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)


@pytest.fixture(scope="module", autouse=True)
def print_figures(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if not FIGURES:
        return
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print("\n[e2e migration] figures (measured, not asserted):")
        for name, value in FIGURES.items():
            print(f"  {name:66s} {value}")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def slow_copies(cloud: Cloud, host: str, instance_uuid: str, mib_per_s: int) -> None:
    """Cap the guest's migration bandwidth (libvirt's own setting), so a copy lasts long enough
    to be acted on in the middle."""
    conn = cloud.conn(host)
    try:
        conn.lookupByUUIDString(instance_uuid).migrateSetMaxSpeed(mib_per_s, 0)
    finally:
        conn.close()


# --- the scenarios ----------------------------------------------------------------------------


def test_hosts_report_how_to_reach_them_and_what_each_adds_in_memory(cloud: Cloud) -> None:
    for name, host in cloud.hosts.items():
        report = cloud.conductor.last_report(name)
        assert report.migration_uri == host.peer_uri
        assert report.hypervisor_type == "QEMU"
        libvirtd = host.libvirtd_pid()
        assert libvirtd is not None
        figure(f"{name}: libvirtd RSS (MB)", rss_mb(libvirtd))
        figure(f"{name}: agent RSS (MB)", rss_mb(cloud.agents[name].pid))


def test_a_live_migration_keeps_the_guest_counting_without_a_gap(cloud: Cloud) -> None:
    spawn = cloud.boot("compute-1")
    uuid_ = spawn.instance_uuid
    source_log, dest_log = cloud.console("compute-1", uuid_), cloud.console("compute-2", uuid_)
    seen = TickWatch(source_log, dest_log)
    request = migration(spawn, "compute-1", "compute-2", cloud)
    try:
        cloud.step("compute-2", msg.TASK_PREPARE_MIGRATION, request, msg.EVENT_MIGRATION_PREPARED)
        mark = cloud.conductor.mark()
        seen.start()
        started = time.monotonic()
        event = cloud.step("compute-1", msg.TASK_LIVE_MIGRATE, request, msg.EVENT_LIVE_MIGRATED)
        took = time.monotonic() - started
        assert event.power_state == msg.POWER_RUNNING
        assert cloud.domain_state("compute-2", uuid_) == "running"
        assert cloud.domain_state("compute-1", uuid_) is None
        assert cloud.instance_files("compute-1", uuid_) == [], "the source's files are gone"

        source_text = seen.texts[source_log]  # as it was last read: the source removed it
        last_on_source = max(ticks(source_text))
        dest_text = wait_for(dest_log, f"TICK {last_on_source + 3}")
        seen.stop()
        assert min(ticks(dest_text)) <= last_on_source + 1, "the counter went on from there"
        counted = ticks(source_text + dest_text)  # a line cut by the switch is whole again
        assert counted == list(range(counted[0], counted[-1] + 1)), "a tick was lost or repeated"

        progress = [e for e in cloud.conductor.events(mark)
                    if e.event == msg.EVENT_MIGRATION_PROGRESS and e.instance_uuid == uuid_]
        for figures in (e.progress for e in progress):
            assert set(figures) == {"memory_total", "memory_processed", "memory_remaining",
                                    "disk_total", "disk_processed", "disk_remaining"}
        job = completed_job(cloud, "compute-2", uuid_)
        figure("live: LIVE_MIGRATE sent to LIVE_MIGRATED received (s)", round(took, 2))
        figure("live: libvirt's job time (ms)", job.get("time_elapsed"))
        figure("live: libvirt's downtime (ms)", job.get("downtime"))
        figure("live: downtime from the guest's counter (ms)", seen.downtime_ms(last_on_source))
        figure("live: progress events", len(progress))
        report = wait_report(cloud, "compute-2", uuid_)
        [state] = [d for d in report.domains if d.uuid == uuid_]
        socket_path = cloud.hosts["compute-2"].vnc_dir / f"{uuid_}.vnc"
        assert (state.vnc_port, state.vnc_socket) == (-1, os.fspath(socket_path))
        assert rfb_banner(socket_path).startswith(b"RFB ")

        # Delivered again: each step finds its work done and says so, touching nothing.
        again = cloud.step("compute-1", msg.TASK_LIVE_MIGRATE, request, msg.EVENT_LIVE_MIGRATED)
        assert again.power_state == msg.POWER_RUNNING
        cloud.step("compute-2", msg.TASK_PREPARE_MIGRATION, request, msg.EVENT_MIGRATION_PREPARED)
        last = max(ticks(dest_log.read_text(errors="replace")))
        wait_for(dest_log, f"TICK {last + 1}", timeout=30)
    finally:
        cloud.clean(uuid_)


def test_force_complete_pauses_the_guest_and_it_runs_on_at_the_destination(
    cloud: Cloud,
) -> None:
    spawn = cloud.boot("compute-2")
    uuid_ = spawn.instance_uuid
    request = migration(spawn, "compute-2", "compute-1", cloud)
    try:
        slow_copies(cloud, "compute-2", uuid_, 8)
        cloud.step("compute-1", msg.TASK_PREPARE_MIGRATION, request, msg.EVENT_MIGRATION_PREPARED)
        mark = cloud.conductor.mark()
        cloud.send("compute-2", msg.TASK_LIVE_MIGRATE, request)
        cloud.conductor.wait_event(uuid_, (msg.EVENT_MIGRATION_PROGRESS,), mark)
        cloud.send("compute-2", msg.TASK_FORCE_COMPLETE_MIGRATION, request)
        forced = time.monotonic()
        deadline = forced + 30
        while cloud.domain_state("compute-2", uuid_) != "paused":
            assert time.monotonic() < deadline, "the guest was never paused to converge"
            time.sleep(0.2)
        event, at = cloud.conductor.wait_event(uuid_, (msg.EVENT_LIVE_MIGRATED,), mark)
        assert (event.event, event.power_state) == (msg.EVENT_LIVE_MIGRATED, msg.POWER_RUNNING)
        figure("force-complete at 8 MiB/s: FORCE_COMPLETE sent to LIVE_MIGRATED (s)",
               round(at - forced, 2))
        assert cloud.domain_state("compute-1", uuid_) == "running"
        assert_runs_on_its_source(cloud, "compute-1", uuid_)  # its new home now
        cloud.destroy("compute-1", uuid_)
    finally:
        cloud.clean(uuid_)


def test_an_aborted_live_migration_leaves_the_guest_running_on_its_source(cloud: Cloud) -> None:
    spawn = cloud.boot("compute-1")
    uuid_ = spawn.instance_uuid
    request = migration(spawn, "compute-1", "compute-2", cloud)
    try:
        slow_copies(cloud, "compute-1", uuid_, 4)
        cloud.step("compute-2", msg.TASK_PREPARE_MIGRATION, request, msg.EVENT_MIGRATION_PREPARED)
        mark = cloud.conductor.mark()
        cloud.send("compute-1", msg.TASK_LIVE_MIGRATE, request)
        cloud.conductor.wait_event(uuid_, (msg.EVENT_MIGRATION_PROGRESS,), mark)
        assert cloud.domain_state("compute-2", uuid_) == "paused", "the copy is arriving"
        cloud.send("compute-1", msg.TASK_ABORT_MIGRATION, request)
        event, _ = cloud.conductor.wait_event(uuid_, (msg.EVENT_LIVE_MIGRATED,), mark)
        assert (event.event, event.action) == (msg.EVENT_ACTION_FAILED, msg.ACTION_MIGRATION)
        assert "cancelled" in event.message and event.migration_id == request.migration_id
        assert_runs_on_its_source(cloud, "compute-1", uuid_)
        assert cloud.domain_state("compute-2", uuid_) is None
        cloud.destroy("compute-2", uuid_)  # the control plane's rollback
        cloud.destroy("compute-1", uuid_)
    finally:
        cloud.clean(uuid_)


def test_a_cold_migration_moves_the_disk_and_a_revert_brings_the_guest_back(cloud: Cloud) -> None:
    spawn = cloud.boot("compute-1")
    uuid_ = spawn.instance_uuid
    mark_on_disk = marker(cloud.console("compute-1", uuid_).read_text(errors="replace"))
    request = migration(spawn, "compute-1", "compute-2", cloud, live=False)
    try:
        cloud.step("compute-2", msg.TASK_PREPARE_MIGRATION, request, msg.EVENT_MIGRATION_PREPARED)
        started = time.monotonic()
        event = cloud.step("compute-1", msg.TASK_MIGRATE_DISK, request, msg.EVENT_DISK_MIGRATED)
        sent = time.monotonic()
        assert event.power_state == msg.POWER_SHUTDOWN
        assert cloud.domain_state("compute-1", uuid_) == "shutoff", "kept, for a revert"
        event = cloud.step("compute-2", msg.TASK_FINISH_MIGRATION, request,
                           msg.EVENT_MIGRATION_FINISHED)
        assert event.power_state == msg.POWER_RUNNING
        text = wait_for(cloud.console("compute-2", uuid_), "TICK 1")
        figure("cold: MIGRATE_DISK (shutdown + disk sent) (s)", round(sent - started, 2))
        figure("cold: MIGRATE_DISK sent to the guest ticking on the destination (s)",
               round(time.monotonic() - started, 2))
        assert BANNER in text and marker(text) == mark_on_disk

        cloud.destroy("compute-2", uuid_)  # revert: the destination's copy goes first
        event = cloud.step("compute-1", msg.TASK_REVERT_MIGRATION, request,
                           msg.EVENT_MIGRATION_REVERTED)
        assert event.power_state == msg.POWER_RUNNING
        text = wait_for(cloud.console("compute-1", uuid_), "TICK 1")
        assert marker(text) == mark_on_disk
        cloud.destroy("compute-1", uuid_)
    finally:
        cloud.clean(uuid_)


def test_a_resize_to_another_host_grows_the_guest_there_and_a_confirm_clears_the_source(
    cloud: Cloud,
) -> None:
    spawn = cloud.boot("compute-2")
    uuid_ = spawn.instance_uuid
    mark_on_disk = marker(cloud.console("compute-2", uuid_).read_text(errors="replace"))
    request = migration(spawn, "compute-2", "compute-3", cloud, live=False, memory_mb=192,
                        root_gb=2)
    try:
        cloud.step("compute-3", msg.TASK_PREPARE_MIGRATION, request, msg.EVENT_MIGRATION_PREPARED)
        cloud.step("compute-2", msg.TASK_MIGRATE_DISK, request, msg.EVENT_DISK_MIGRATED)
        cloud.step("compute-3", msg.TASK_FINISH_MIGRATION, request, msg.EVENT_MIGRATION_FINISHED)
        text = wait_for(cloud.console("compute-3", uuid_), "TICK 1")
        assert marker(text) == mark_on_disk
        assert f"DISKSIZE {2 * 1024**3 // 512}" in text
        # Delivered again, both steps find the work done: no second copy, no restart.
        cloud.step("compute-2", msg.TASK_MIGRATE_DISK, request, msg.EVENT_DISK_MIGRATED)
        event = cloud.step("compute-3", msg.TASK_FINISH_MIGRATION, request,
                           msg.EVENT_MIGRATION_FINISHED)
        assert event.power_state == msg.POWER_RUNNING
        assert cloud.instance_files("compute-3", uuid_) == [uuid_], "no disk arrived again"
        assert ticks(cloud.console("compute-3", uuid_).read_text())[0] == 1, "not restarted"
        conn = cloud.conn("compute-3")
        try:
            assert conn.lookupByUUIDString(uuid_).maxMemory() == 192 * 1024
        finally:
            conn.close()
        cloud.destroy("compute-2", uuid_)  # confirm
        cloud.destroy("compute-3", uuid_)
    finally:
        cloud.clean(uuid_)


def test_a_destination_whose_libvirtd_dies_mid_copy_leaves_the_guest_on_its_source(
    cloud: Cloud,
) -> None:
    spawn = cloud.boot("compute-1")
    uuid_ = spawn.instance_uuid
    target = cloud.hosts["compute-3"]
    request = migration(spawn, "compute-1", "compute-3", cloud)
    try:
        slow_copies(cloud, "compute-1", uuid_, 4)
        cloud.step("compute-3", msg.TASK_PREPARE_MIGRATION, request, msg.EVENT_MIGRATION_PREPARED)
        mark = cloud.conductor.mark()
        cloud.send("compute-1", msg.TASK_LIVE_MIGRATE, request)
        cloud.conductor.wait_event(uuid_, (msg.EVENT_MIGRATION_PROGRESS,), mark)
        pid = target.libvirtd_pid()
        assert pid is not None
        killed = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        event, at = cloud.conductor.wait_event(uuid_, (msg.EVENT_LIVE_MIGRATED,), mark)
        figure("killed destination: SIGKILL to the failure report (s)", round(at - killed, 2))
        assert (event.event, event.action) == (msg.EVENT_ACTION_FAILED, msg.ACTION_MIGRATION)
        assert_runs_on_its_source(cloud, "compute-1", uuid_)

        simhosts.start_libvirtd(target)  # the host comes back; its libvirtd cleans up the copy
        deadline = time.monotonic() + 60
        while cloud.domain_state("compute-3", uuid_) is not None or qemu_of(target, uuid_):
            assert time.monotonic() < deadline, "the arriving copy outlived its libvirtd"
            time.sleep(0.5)
        cloud.destroy("compute-3", uuid_)  # the control plane's rollback: no file is left
        cloud.destroy("compute-1", uuid_)
    finally:
        cloud.clean(uuid_)


# --- helpers of the scenarios ------------------------------------------------------------------


class TickWatch:
    """When each TICK first appeared in the source's and the destination's console logs."""

    def __init__(self, *logs: Path) -> None:
        self.logs = logs
        self.first_seen: dict[int, float] = {}
        self.texts: dict[Path, str] = {log: "" for log in logs}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            for log in self.logs:
                try:
                    text = self.texts[log] = log.read_text(errors="replace")
                except FileNotFoundError:
                    continue
                for n in ticks(text):
                    self.first_seen.setdefault(n, now)
            time.sleep(0.02)

    def downtime_ms(self, last_on_source: int) -> int | None:
        """How much longer than the usual second the tick across the switch took."""
        before = self.first_seen.get(last_on_source)
        after = self.first_seen.get(last_on_source + 1)
        usual = [self.first_seen[n + 1] - self.first_seen[n] for n in self.first_seen
                 if n + 1 in self.first_seen and n not in (last_on_source,)]
        if before is None or after is None or not usual:
            return None
        usual.sort()
        return round((after - before - usual[len(usual) // 2]) * 1000)


def completed_job(cloud: Cloud, host: str, instance_uuid: str) -> dict:
    conn = cloud.conn(host)
    try:
        domain = conn.lookupByUUIDString(instance_uuid)
        return domain.jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED)
    finally:
        conn.close()


def wait_report(cloud: Cloud, host: str, instance_uuid: str) -> msg.HostReport:
    mark = cloud.conductor.mark()
    received = cloud.conductor.wait(
        lambda r: r.task == msg.TASK_HOST_REPORT and r.payload["host"] == host
        and any(d["uuid"] == instance_uuid for d in r.payload["domains"]),
        mark, 30, f"a report of {instance_uuid} from {host}")
    return msg.HostReport.from_dict(received.payload)


def rfb_banner(path: Path) -> bytes:
    with socket.socket(socket.AF_UNIX) as vnc:
        vnc.settimeout(5)
        vnc.connect(os.fspath(path))
        return vnc.recv(12)


def assert_runs_on_its_source(cloud: Cloud, host: str, instance_uuid: str) -> None:
    """The guest runs on `host` and its counter goes on there."""
    assert cloud.domain_state(host, instance_uuid) == "running"
    log = cloud.console(host, instance_uuid)
    last = max(ticks(log.read_text(errors="replace")))
    wait_for(log, f"TICK {last + 2}", timeout=30)


def qemu_of(host: simhosts.SimHost, instance_uuid: str) -> list[int]:
    """Processes in the host's network namespace whose command line names the instance."""
    out = subprocess.run(["ip", "netns", "pids", host.netns], capture_output=True, text=True,
                         check=False).stdout
    found = []
    for pid in out.split():
        try:
            if instance_uuid in Path(f"/proc/{pid}/cmdline").read_text(errors="replace"):
                found.append(int(pid))
        except OSError:
            continue
    return found
