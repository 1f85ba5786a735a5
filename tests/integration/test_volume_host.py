"""The volume host as it runs: the real process (python -m compute_agent volume) with the nbd back
end and its qemu-storage-daemon, on Redis. What the conductor would receive is read off the
conductor queue by a plain kombu consumer; what a compute host's qemu would see is read over NBD
with qemu-img. And the simulated storage host (simhosts/storage.py) comes up on the fabric, serves
there, and leaves nothing behind.

Needs qemu-storage-daemon and qemu-img (scripts/setup.sh); the storage host test needs root.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from kombu import Connection
from kombu.simple import SimpleQueue

import simhosts
import simhosts.storage
from compute_agent import messages as msg
from simhosts.hosts import BASE
from tests.integration.dataplane import NEEDS_ROOT
from tests.stack import REDIS_BASE, ROOT, free_port
from tests.unit.compute_agent.image_server import ImageServer

pytestmark = pytest.mark.skipif(
    shutil.which("qemu-storage-daemon") is None or shutil.which("qemu-img") is None,
    reason="qemu-storage-daemon and qemu-img are missing: scripts/setup.sh")

PYTHON = sys.executable
GIB = 1024**3


@pytest.fixture
def broker_url() -> Iterator[str]:
    """A Redis database of this test's own, claimed as test stacks claim theirs (tests/stack.py)."""
    registry = redis.Redis.from_url(f"{REDIS_BASE}/0")
    owner = f"volume-host-test-{secrets.token_hex(3)}"
    number = next((n for n in range(1, 16)
                   if registry.set(f"kumo:it:redis-db:{n}", owner, nx=True, ex=3600)), None)
    if number is None:
        pytest.skip("every Redis database 1-15 is claimed by a running test stack")
    url = f"{REDIS_BASE}/{number}"
    redis.Redis.from_url(url).flushdb()
    try:
        yield url
    finally:
        redis.Redis.from_url(url).flushdb()
        if registry.get(f"kumo:it:redis-db:{number}") == owner.encode():
            registry.delete(f"kumo:it:redis-db:{number}")


class Conductor:
    """Reads what volume hosts send the conductor, and sends them tasks, over the broker alone."""

    def __init__(self, broker_url: str) -> None:
        self.connection = Connection(broker_url)
        self.queue = SimpleQueue(self.connection, msg.CONDUCTOR_QUEUE)
        self.seen: list[tuple[str, dict[str, Any]]] = []

    def send(self, task: str, queue: str, payload: dict[str, Any]) -> None:
        # A Celery task message (protocol 2), as cloud/rpc.py's send_task makes it.
        with self.connection.Producer() as producer:
            producer.publish(
                [[payload], {}, {"callbacks": None, "errbacks": None, "chain": None,
                                 "chord": None}],
                routing_key=queue, exchange="", serializer="json",
                headers={"lang": "py", "task": task, "id": secrets.token_hex(16),
                         "argsrepr": "", "kwargsrepr": "", "retries": 0},
                declare=[],
            )

    def wait_for(self, task: str, match: Any = lambda _payload: True,
                 timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            for name, payload in self.seen:
                if name == task and match(payload):
                    return payload
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {task} arrived in {timeout} s; got "
                                     f"{[name for name, _ in self.seen]}")
            with contextlib.suppress(SimpleQueue.Empty):
                message = self.queue.get(timeout=min(1.0, remaining))
                args, _kwargs, _embed = message.payload
                self.seen.append((message.headers["task"], args[0]))
                message.ack()

    def close(self) -> None:
        self.queue.close()
        self.connection.release()


@contextlib.contextmanager
def process(argv: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    with log.open("w") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def nbd_size(host: str, port: int, export: str, netns: str = "") -> int:
    """The virtual size of an NBD export, read as a compute host's qemu reads it."""
    prefix = ["ip", "netns", "exec", netns] if netns else []
    out = subprocess.run(
        [*prefix, "qemu-img", "info", "--output=json", "--image-opts",
         f"driver=nbd,host={host},port={port},export={export}"],
        capture_output=True, text=True, timeout=30, check=True).stdout
    return int(json.loads(out)["virtual-size"])


def nbd_read(host: str, port: int, export: str, length: int) -> bytes:
    """The first bytes of an NBD export, as a guest would read them."""
    out = subprocess.run(
        ["qemu-io", "-r", "--image-opts", f"driver=nbd,host={host},port={port},export={export}",
         "-c", f"read -v 0 {length}"], capture_output=True, text=True, timeout=30, check=True)
    data = bytearray()
    for line in out.stdout.splitlines():
        if line[:8].isalnum() and ":" in line[:10]:
            data += bytes.fromhex("".join(line.split(":", 1)[1].strip().split("  ")[0].split()))
    return bytes(data)


def _serves(host: str, port: int, export: str) -> bool:
    try:
        return nbd_size(host, port, export) > 0
    except subprocess.CalledProcessError:
        return False


def test_the_volume_host_creates_serves_and_deletes_a_volume_and_reports_itself(
    tmp_path: Path, broker_url: str, image_server: ImageServer
) -> None:
    volumes, port = tmp_path / "volumes", free_port()
    conductor = Conductor(broker_url)
    argv = [PYTHON, "-m", "compute_agent", "volume", "--host", "vol-it", "--broker", broker_url,
            "--backend", "nbd", "--export-address", "127.0.0.1", "--export-port", str(port),
            "--volumes-dir", str(volumes), "--heartbeat-interval", "1",
            "--availability-zone", "az-it"]
    try:
        with process(argv, tmp_path / "volume.log") as agent:
            report = conductor.wait_for(msg.TASK_VOLUME_HOST_REPORT)
            assert (report["host"], report["backend"], report["availability_zone"],
                    report["volumes"]) == ("vol-it", "nbd", "az-it", {})
            assert report["total_gb"] >= report["free_gb"] > 0

            volume_id = "5b0c7a4e-1d2f-4e3a-9b8c-7d6e5f4a3b2c"
            conductor.send(msg.TASK_CREATE_VOLUME, msg.volume_queue("vol-it"), msg.VolumeRequest(
                request_id="req-it-1", volume_id=volume_id, size_gb=1).to_dict())
            created = conductor.wait_for(msg.TASK_VOLUME_EVENT)
            assert (created["event"], created["request_id"], created["host"],
                    created["size_gb"]) == (msg.EVENT_VOLUME_CREATED, "req-it-1", "vol-it", 1)
            assert created["connection"] == {"driver_volume_type": "nbd", "host": "127.0.0.1",
                                             "port": port, "export": volume_id}
            assert nbd_size("127.0.0.1", port, volume_id) == GIB
            conductor.wait_for(msg.TASK_VOLUME_HOST_REPORT,
                               lambda r: r["volumes"] == {volume_id: GIB})

            # The daemon dies (an OOM kill): the next heartbeat starts it again and the volume
            # is served again, at the same address.
            os.kill(int((volumes / ".qsd" / "qsd.pid").read_text()), signal.SIGKILL)
            deadline = time.monotonic() + 30
            while not _serves("127.0.0.1", port, volume_id):
                assert time.monotonic() < deadline, "the volume was not served again"
                time.sleep(0.5)

            conductor.send(msg.TASK_EXTEND_VOLUME, msg.volume_queue("vol-it"), msg.VolumeRequest(
                request_id="req-it-2", volume_id=volume_id, size_gb=2).to_dict())
            extended = conductor.wait_for(msg.TASK_VOLUME_EVENT,
                                          lambda e: e["request_id"] == "req-it-2")
            assert (extended["event"], extended["size_gb"]) == (msg.EVENT_VOLUME_EXTENDED, 2)

            # From an image the image API serves, and back into another image: the data
            # survives both trips.
            marker = b"kumo-volume-marker".ljust(512, b".")
            raw = tmp_path / "image.raw"
            raw.write_bytes(marker + bytes(GIB // 64 - len(marker)))
            image = msg.ImageRef(id="img-it", disk_format="raw",
                                 checksum=image_server.add("image.raw", raw.read_bytes()),
                                 url=image_server.url("image.raw"), token="IT-TOKEN")
            conductor.send(msg.TASK_CREATE_VOLUME, msg.volume_queue("vol-it"), msg.VolumeRequest(
                request_id="req-it-img", volume_id="vol-from-image", size_gb=1,
                source=msg.SOURCE_IMAGE, image=image).to_dict())
            from_image = conductor.wait_for(msg.TASK_VOLUME_EVENT,
                                            lambda e: e["request_id"] == "req-it-img")
            assert from_image["event"] == msg.EVENT_VOLUME_CREATED, from_image
            assert nbd_read("127.0.0.1", port, "vol-from-image", len(marker)) == marker
            upload = msg.ImageRef(id="img-up", disk_format="raw", token="IT-TOKEN",
                                  url=image_server.url("v2/images/img-up/file"))
            conductor.send(msg.TASK_UPLOAD_VOLUME, msg.volume_queue("vol-it"), msg.VolumeRequest(
                request_id="req-it-up", volume_id="vol-from-image", image=upload).to_dict())
            uploaded = conductor.wait_for(msg.TASK_VOLUME_EVENT,
                                          lambda e: e["request_id"] == "req-it-up")
            assert (uploaded["event"], uploaded["image_id"]) == (msg.EVENT_VOLUME_UPLOADED,
                                                                 "img-up")
            body = image_server.uploads["/v2/images/img-up/file"]
            assert (body[:len(marker)], len(body)) == (marker, GIB)

            conductor.send(msg.TASK_DELETE_VOLUME, msg.volume_queue("vol-it"), msg.VolumeRequest(
                request_id="req-it-3", volume_id=volume_id).to_dict())
            deleted = conductor.wait_for(msg.TASK_VOLUME_EVENT,
                                         lambda e: e["request_id"] == "req-it-3")
            assert deleted["event"] == msg.EVENT_VOLUME_DELETED
            assert not (volumes / f"{volume_id}.qcow2").exists()
            assert agent.poll() is None
    finally:
        conductor.close()
        subprocess.run([PYTHON, "-m", "compute_agent", "volume", "--stop-daemon",
                        "--volumes-dir", str(volumes)], cwd=ROOT, check=False)
    assert not list((volumes / ".qsd").glob("qsd.pid"))


@NEEDS_ROOT
def test_the_simulated_storage_host_serves_the_fabric_and_leaves_nothing_behind(
    tmp_path: Path, broker_url: str
) -> None:
    tag = f"vt{secrets.token_hex(2)}"
    conductor = Conductor(broker_url)
    try:
        (compute,) = simhosts.up(tag, 1)
        (storage,) = simhosts.storage.up(tag, 1)
        assert storage.ip == "10.77.0.201"
        argv = simhosts.storage.agent_argv(storage, PYTHON, [
            "--broker", broker_url, "--heartbeat-interval", "1"])
        with process(argv, tmp_path / "storage-1.log"):
            conductor.wait_for(msg.TASK_VOLUME_HOST_REPORT, lambda r: r["host"] == "storage-1")
            conductor.send(msg.TASK_CREATE_VOLUME, msg.volume_queue("storage-1"),
                           msg.VolumeRequest(request_id="req-sim", volume_id="vol-sim",
                                             size_gb=1).to_dict())
            created = conductor.wait_for(msg.TASK_VOLUME_EVENT)
            assert created["event"] == msg.EVENT_VOLUME_CREATED, created
            connection = created["connection"]
            assert (connection["host"], connection["port"]) == (storage.ip, 10809)
            # A compute host reaches the export over the fabric, as its qemu would.
            assert nbd_size(storage.ip, 10809, "vol-sim", netns=compute.netns) == GIB
            assert (storage.volumes_dir / "vol-sim.qcow2").exists()
            daemon = int((storage.volumes_dir / ".qsd" / "qsd.pid").read_text())
    finally:
        conductor.close()
        simhosts.down(tag)
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                                check=True).stdout
    assert f"kumo-{tag}-" not in namespaces
    assert not (BASE / tag).exists()
    deadline = time.monotonic() + 5
    while Path(f"/proc/{daemon}").exists() and "\nState:\tZ" not in Path(
            f"/proc/{daemon}/status").read_text():
        assert time.monotonic() < deadline, "qemu-storage-daemon outlived its host"
        time.sleep(0.1)


def test_a_volume_host_whose_nbd_port_is_taken_does_not_start_and_says_why(tmp_path: Path) -> None:
    volumes = tmp_path / "volumes"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        try:
            result = subprocess.run(
                [PYTHON, "-m", "compute_agent", "volume", "--host", "vol-busy",
                 "--broker", f"{REDIS_BASE}/0", "--export-address", "127.0.0.1",
                 "--export-port", str(port), "--volumes-dir", str(volumes)],
                cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
        finally:
            subprocess.run([PYTHON, "-m", "compute_agent", "volume", "--stop-daemon",
                            "--volumes-dir", str(volumes)], cwd=ROOT, check=False)
    assert result.returncode == 1
    assert f"volume host vol-busy cannot start: cannot serve NBD on 127.0.0.1:{port}" in (
        result.stdout + result.stderr)
