"""`python -m compute_agent join URL TOKEN`: libvirt checked and the file checked before the token is
spent, the answer written as the agent's 0600 configuration, the agent started as asked. The
cloud's side is a small HTTP server here; the real one is in
tests/integration/test_host_credentials.py."""

from __future__ import annotations

import json
import stat
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import pytest

from compute_agent import join
from compute_agent.env_file import EnvFileError, read_env_file, write_env_file
from compute_agent.worker import parse_args as agent_args

TOKEN = "t" * 43
ANSWER = {"join": {
    "host": "compute-7", "queue": "compute.compute-7", "broker": "redis",
    "broker_url": "redis://kumo-host-compute-7:pw-xyz@10.0.0.5:6379/0",
    "host_secret": "s" * 64, "internal_url": "http://controller:8000",
    "heartbeat_interval": 10.0,
}}


class Cloud:
    """The join endpoint: answers `status` and `body`, records what it was sent."""

    def __init__(self) -> None:
        self.status = 201
        self.body: dict[str, Any] = ANSWER
        self.received: list[tuple[str, dict]] = []


@pytest.fixture
def cloud() -> Iterator[tuple[Cloud, str]]:
    state = Cloud()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            state.received.append((self.path, json.loads(self.rfile.read(length))))
            payload = json.dumps(state.body).encode()
            self.send_response(state.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


class Systemctl:
    """systemctl as a recorder: `cat` shows `unit_text` when `installed`; the rest succeeds."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.installed = True
        self.unit_text = f"[Service]\nEnvironmentFile={join.DEFAULT_PATH}\n"

    def __call__(self, *args: str) -> CompletedProcess[str]:
        self.calls.append(args)
        if args[0] == "cat" and not self.installed:
            return CompletedProcess(args, 1, "", "No files found for kumo-compute-agent.service")
        return CompletedProcess(args, 0, self.unit_text if args[0] == "cat" else "", "")


@pytest.fixture
def systemctl(monkeypatch) -> Systemctl:
    fake = Systemctl()
    monkeypatch.setattr(join, "_systemctl", fake)
    return fake


def _main(url: str, config: Path, *extra: str) -> int:
    return join.main([url, TOKEN, "--config", str(config), "--libvirt-uri", "test:///default",
                      "--host-ip", "10.0.0.7", *extra])


def test_join_writes_the_agents_configuration_readable_by_root_only(cloud, tmp_path, capsys):
    state, url = cloud
    config = tmp_path / "etc" / "compute-agent.env"
    assert _main(url, config, "--no-start") == 0
    assert state.received == [(join.JOIN_PATH, {"join": {"token": TOKEN}})]
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    values = read_env_file(config)
    assert values == {
        "KUMO_COMPUTE_HOST": "compute-7", "KUMO_LIBVIRT_URI": "test:///default",
        "CELERY_BROKER_URL": ANSWER["join"]["broker_url"], "KUMO_HOST_SECRET": "s" * 64,
        "KUMO_HOST_IP": "10.0.0.7", "KUMO_HEARTBEAT_INTERVAL": "10",
        "KUMO_INTERNAL_URL": "http://controller:8000",
    }
    out = capsys.readouterr()
    assert "pw-xyz" not in out.out + out.err and "s" * 64 not in out.out + out.err
    assert TOKEN not in out.out + out.err
    assert "redis://kumo-host-compute-7:***@10.0.0.5:6379/0" in out.out


def test_the_agent_reads_what_join_wrote(cloud, tmp_path):
    _, url = cloud
    config = tmp_path / "compute-agent.env"
    assert _main(url, config, "--no-start") == 0
    agent = agent_args(["--config", str(config)], environ={})
    assert (agent.host, agent.broker_url, agent.host_ip) == (
        "compute-7", ANSWER["join"]["broker_url"], "10.0.0.7")
    assert agent.identity is not None and agent.identity.secret == "s" * 64
    # Its metadata proxy signs with that secret, as this host, towards the control plane's URL.
    assert agent.internal_url == "http://controller:8000"


def test_a_refused_token_says_why_and_writes_nothing(cloud, tmp_path, capsys):
    state, url = cloud
    state.status = 401
    state.body = {"unauthorized": {"code": 401, "message": "This join token was already used."}}
    config = tmp_path / "compute-agent.env"
    assert _main(url, config, "--no-start") == join.EXIT_REFUSED
    assert "refused the join (401): This join token was already used." in capsys.readouterr().err
    assert not config.exists()


def test_without_libvirt_the_token_is_not_spent(cloud, tmp_path, capsys):
    state, url = cloud
    config = tmp_path / "compute-agent.env"
    code = join.main([url, TOKEN, "--config", str(config), "--no-start",
                      "--libvirt-uri", "qemu+unix:///system?socket=/nonexistent/sock"])
    assert code == join.EXIT_LOCAL
    assert "libvirt does not answer" in capsys.readouterr().err
    assert state.received == [] and not config.exists()


def test_an_unwritable_configuration_does_not_spend_the_token(cloud, tmp_path):
    state, url = cloud
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert _main(url, blocker / "compute-agent.env", "--no-start") == join.EXIT_LOCAL
    assert state.received == []


def test_with_systemd_the_unit_is_enabled_and_restarted(cloud, tmp_path, systemctl, capsys):
    _, url = cloud
    config = tmp_path / "compute-agent.env"
    systemctl.unit_text = f"[Service]\nEnvironmentFile=-{config}\n"
    assert _main(url, config, "--systemd") == 0
    assert systemctl.calls == [("cat", join.UNIT), ("enable", join.UNIT), ("restart", join.UNIT)]
    assert "started kumo-compute-agent.service" in capsys.readouterr().out


def test_with_systemd_and_no_unit_installed_the_token_is_not_spent(cloud, tmp_path, systemctl,
                                                                    capsys):
    state, url = cloud
    systemctl.installed = False
    assert _main(url, tmp_path / "compute-agent.env", "--systemd") == join.EXIT_LOCAL
    assert "systemd has no kumo-compute-agent.service" in capsys.readouterr().err
    assert state.received == [] and systemctl.calls == [("cat", join.UNIT)]


def test_with_systemd_a_unit_reading_another_file_is_refused(cloud, tmp_path, systemctl, capsys):
    state, url = cloud
    assert _main(url, tmp_path / "compute-agent.env", "--systemd") == join.EXIT_LOCAL
    assert f"does not read {tmp_path / 'compute-agent.env'}" in capsys.readouterr().err
    assert state.received == []


def test_systemd_and_no_start_do_not_go_together(tmp_path):
    with pytest.raises(SystemExit):
        join.parse_args(["http://c:8000", TOKEN, "--systemd", "--no-start"])


@pytest.mark.parametrize("argv", [["ftp://c", TOKEN], ["http://c:8000", TOKEN, "--host", "a b"]])
def test_bad_arguments_are_refused(argv):
    with pytest.raises(SystemExit):
        join.parse_args(argv)


def test_the_shipped_unit_reads_the_file_join_writes_by_default():
    unit = (Path(__file__).resolve().parents[3] / "deploy" / "kumo-compute-agent.service")
    lines = unit.read_text().splitlines()
    assert f"EnvironmentFile={join.DEFAULT_PATH}" in lines
    assert any(line.startswith("ExecStart=") and line.endswith("-m compute_agent")
               for line in lines)


def test_a_value_that_would_need_quoting_is_not_written(tmp_path):
    with pytest.raises(EnvFileError, match="would need quoting"):
        write_env_file(tmp_path / "x.env", {"KUMO_HOST_IP": "10.0.0.1 # x"})
