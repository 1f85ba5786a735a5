"""Console relay figures: 256 MiB from a TCP source and small echoes through (a) Kumo's relay in the
web process (consoles/consumer.py under cloud/asgi.py), (b) the standalone websockify proxy
(consoles/proxy.py), (c) nothing — in one run.

    .venv/bin/python -m bench.console_bench [--mib 256] [--echoes 2000] [--rounds 3]

The "guests" are two TCP servers on loopback: one streams the bytes and closes, one echoes. Each
proxy reaches them through real console tokens in a fresh PostgreSQL database, exactly as a
browser's noVNC would (websocket, binary frames, Origin of the proxy's own page). Each round
streams the same payload through every path, the relays in turn (which goes first alternates), so
that both see the same machine; the figures are medians over the rounds, and the relay ratio is
also given for each round with the load average. Echo round trips are timed the same way.
"""

from __future__ import annotations

import argparse
import json
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


def _group_cpu_seconds(pgid: int) -> float:
    """CPU time used so far by every process of a process group (a server and its workers)."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields[2] is the process group (field 5 of stat)
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _wait_settled(proc: subprocess.Popen) -> None:
    """Wait until a server has finished starting: its processes use no CPU for half a second.
    gunicorn listens before its workers have imported the application, so a listening port is not
    enough — the first round would time a worker's start-up against a websockify already up."""
    deadline = time.monotonic() + 60
    before = _group_cpu_seconds(proc.pid)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = _group_cpu_seconds(proc.pid)
        if now - before < 0.05:
            return
        before = now


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--echoes", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
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
        for proc in procs:
            _wait_settled(proc)

        relays = (("web relay", web_port), ("websockify", proxy_port))
        rates: dict[str, list[float]] = {"direct TCP": []}
        echoes: dict[str, list[float]] = {"direct TCP": []}
        for name, _ in relays:
            rates[name], echoes[name] = [], []
        load = [os.getloadavg()[0]]
        per_round = max(1, args.echoes // args.rounds)
        for round_no in range(args.rounds):
            rates["direct TCP"].append(size / _direct_stream(stream_guest.port, size) / 1e6)
            echoes["direct TCP"].extend(_direct_echo(echo_guest.port, per_round))
            for name, port in relays if round_no % 2 == 0 else relays[::-1]:
                address = f"127.0.0.1:{port}"
                rates[name].append(size / _ws_stream(address, mint("stream"), size) / 1e6)
                echoes[name].extend(_ws_echo(address, mint("echo"), per_round))
            load.append(os.getloadavg()[0])

        def rate(name: str) -> float:
            return statistics.median(rates[name])

        def echo(name: str) -> float:
            return statistics.median(echoes[name]) * 1e6

        print(f"{args.mib} MiB from a TCP source, {per_round * args.rounds} echoes of 64 bytes "
              f"(loopback), {args.rounds} rounds; medians")
        for name in rates:
            print(f"  {name:12s} {rate(name):8.1f} MB/s  {rate(name) / rate('direct TCP'):5.2f}x direct"
                  f"   echo p50 {echo(name):7.1f} us  {echo(name) / echo('direct TCP'):6.1f}x direct")
        ratios = [w / s for w, s in zip(rates["web relay"], rates["websockify"])]
        print(f"  web relay / websockify: {rate('web relay') / rate('websockify'):.2f}x throughput "
              f"(rounds: {', '.join(f'{r:.2f}' for r in ratios)}), "
              f"{echo('web relay') / echo('websockify'):.2f}x echo latency")
        print(f"  load average (1 min) before and after each round: "
              f"{', '.join(f'{x:.1f}' for x in load)}")
        out = Path(os.environ.get("KUMO_ARTIFACTS_DIR", ROOT / "artifacts")) / "bench"
        out.mkdir(parents=True, exist_ok=True)
        (out / "console_bench.json").write_text(json.dumps({  # for bench/report.py
            "kumo_mb_s": rate("web relay"), "websockify_mb_s": rate("websockify"),
            "ratio": rate("web relay") / rate("websockify"), "rounds": ratios,
            "echo_p50_us": {name: echo(name) for name in rates}, "load_average": load,
        }, indent=2))
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
