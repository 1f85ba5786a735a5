"""Console relay figures: 256 MiB from a TCP source and small echoes through (a) Kumo's Channels
proxy in the web process, (b) the standalone websockify proxy, (c) nothing — in one run.

    .venv/bin/python -m bench.console_bench [--mib 256] [--echoes 2000]

The "guests" are two TCP servers on loopback: one streams the bytes and closes, one echoes. Each
proxy reaches them through real console tokens in a fresh PostgreSQL database, exactly as a
browser's noVNC would (websocket, binary frames, Origin of the proxy's own page). Prints MB/s and
echo round-trip p50 for each path, and the ratios between them.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg

from tests.stack import PG_ADMIN_URL, ROOT, free_port

PYTHON = sys.executable
BLOCK = os.urandom(1024 * 1024)


class Guest:
    """A TCP listener: 'stream' sends `size` bytes then closes; 'echo' answers what it gets."""

    def __init__(self, mode: str, size: int = 0) -> None:
        self.mode, self.size = mode, size
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                if self.mode == "stream":
                    left = self.size
                    while left > 0:
                        chunk = BLOCK[:min(left, len(BLOCK))]
                        conn.sendall(chunk)
                        left -= len(chunk)
                    conn.shutdown(socket.SHUT_WR)
                    conn.recv(1)
                else:
                    while data := conn.recv(65536):
                        conn.sendall(data)
            except OSError:
                pass


def _direct_stream(port: int, size: int) -> float:
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        got = 0
        while data := sock.recv(1 << 20):
            got += len(data)
    assert got == size, got
    return time.perf_counter() - started


def _direct_echo(port: int, count: int) -> list[float]:
    samples = []
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(count):
            started = time.perf_counter()
            sock.sendall(b"x" * 64)
            got = b""
            while len(got) < 64:
                got += sock.recv(64 - len(got))
            samples.append(time.perf_counter() - started)
    return samples


def _ws(address: str, token: str):
    from websockets.sync.client import connect

    return connect(f"ws://{address}/console/ws?token={token}", origin=f"http://{address}",
                   subprotocols=["binary"], max_size=None, compression=None, open_timeout=20)


def _ws_stream(address: str, token: str, size: int) -> float:
    from websockets.exceptions import ConnectionClosed

    started = time.perf_counter()
    got = 0
    with _ws(address, token) as conn:
        try:
            while got < size:
                got += len(conn.recv(timeout=30))
        except ConnectionClosed:
            pass
    assert got == size, got
    return time.perf_counter() - started


def _ws_echo(address: str, token: str, count: int) -> list[float]:
    samples = []
    with _ws(address, token) as conn:
        for _ in range(count):
            started = time.perf_counter()
            conn.send(b"x" * 64)
            got = b""
            while len(got) < 64:
                got += conn.recv(timeout=10)
            samples.append(time.perf_counter() - started)
    return samples


def _wait_listening(port: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("a proxy did not start") from None
            time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--echoes", type=int, default=2000)
    args = parser.parse_args()
    size = args.mib * 1024 * 1024

    db = f"kumo_bench_console_{secrets.token_hex(3)}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    work = Path(tempfile.mkdtemp(prefix="kumo-console-bench-"))
    (work / "static").mkdir()
    env = {
        **os.environ, "DATABASE_URL": f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{db}",
        "KUMO_VAR_DIR": str(work), "DJANGO_SECRET_KEY": secrets.token_urlsafe(40),
        "KUMO_LOG_LEVEL": "WARNING", "KUMO_CONSOLE_MAX_SESSIONS": "100",
    }
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "cloud.settings"
    procs: list[subprocess.Popen] = []
    try:
        subprocess.run([PYTHON, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
        import django

        django.setup()
        stream_guest, echo_guest = Guest("stream", size), Guest("echo")
        mint = _minter(stream_guest.port, echo_guest.port)

        web_port, proxy_port = free_port(), free_port()
        procs.append(subprocess.Popen(
            [PYTHON, "-m", "gunicorn", "cloud.asgi:application", "-k", "cloud.web_worker.Worker",
             "--workers", "2", "--bind", f"127.0.0.1:{web_port}", "--log-level", "warning"],
            cwd=ROOT, env=env, start_new_session=True))
        procs.append(subprocess.Popen(
            [PYTHON, "-m", "consoles.proxy", "--port", str(proxy_port)],
            cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL))
        _wait_listening(web_port, procs[0])
        _wait_listening(proxy_port, procs[1])

        results = {}
        seconds = _direct_stream(stream_guest.port, size)
        results["direct TCP"] = (size / seconds / 1e6, statistics.median(
            _direct_echo(echo_guest.port, args.echoes)) * 1e6)
        for name, port in (("Channels (web)", web_port), ("websockify", proxy_port)):
            address = f"127.0.0.1:{port}"
            seconds = _ws_stream(address, mint("stream"), size)
            echo = statistics.median(_ws_echo(address, mint("echo"), args.echoes))
            results[name] = (size / seconds / 1e6, echo * 1e6)

        base_rate, base_echo = results["direct TCP"]
        print(f"{args.mib} MiB from a TCP source, {args.echoes} echoes of 64 bytes (loopback)")
        for name, (rate, echo) in results.items():
            print(f"  {name:15s} {rate:8.1f} MB/s  {rate / base_rate:5.2f}x direct   "
                  f"echo p50 {echo:7.1f} us  {echo / base_echo:6.1f}x direct")
        channels, websockify = results["Channels (web)"], results["websockify"]
        print(f"  Channels / websockify: {channels[0] / websockify[0]:.2f}x throughput, "
              f"{channels[1] / websockify[1]:.2f}x echo latency")
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=30)
        from django.db import connections

        connections.close_all()
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def _minter(stream_port: int, echo_port: int):
    """Two ACTIVE instances whose 'VNC ports' are the two guests, and a function that issues a
    console token for either."""
    from django.utils import timezone

    from cloud.compute import consoles, states
    from cloud.compute.models import ComputeNode, Instance, Service
    from cloud.identity.context import RequestContext
    from cloud.identity.models import Project, User

    project = Project.objects.create(name="bench")
    user = User.objects.create_user("bench", secrets.token_urlsafe(16))
    service = Service.objects.create(host="bench-host", binary="nova-compute",
                                     last_seen_up=timezone.now())
    ComputeNode.objects.create(service=service, host="bench-host", hypervisor_hostname="bench-host",
                               host_ip="127.0.0.1")
    instances = {
        mode: Instance.objects.create(
            display_name=mode, project=project, user=user, vcpus=1, memory_mb=64, root_gb=1,
            vm_state=states.ACTIVE, host="bench-host", node="bench-host", console_port=port)
        for mode, port in (("stream", stream_port), ("echo", echo_port))
    }
    ctx = RequestContext(user_id=str(user.id), user_name="bench", project_id=str(project.id),
                         project_name="bench", roles=("member",))

    def mint(mode: str) -> str:
        url = consoles.create_console(ctx, instances[mode], "vnc", "novnc", "http://bench")
        return url.split("?token=", 1)[1]

    return mint


if __name__ == "__main__":
    main()
