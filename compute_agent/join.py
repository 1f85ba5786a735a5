"""`python -m compute_agent join URL TOKEN`: make this machine a compute host of the cloud at URL.

    python -m compute_agent join URL TOKEN [--host NAME] [--config PATH] [--libvirt-uri URI]
                                           [--host-ip ADDRESS] [--systemd | --no-start]

1. Checks that libvirt answers at --libvirt-uri and says what it found; refuses if it does not.
2. Checks that the configuration file can be written (and, with --systemd, that the unit is
   installed), before the one-time token is spent.
3. Trades the token (`manage.py host-token --host NAME` on the control plane) for this host's
   own broker credential and secret: POST URL/compute/v2.1/os-host-joins.
4. Writes the agent's configuration, an environment file of mode 0600 (default
   /etc/kumo/compute-agent.env), which deploy/kumo-compute-agent.service reads.
5. Starts the agent: with --systemd, `systemctl enable` and `systemctl restart` of
   kumo-compute-agent.service (restart, so a host joining again runs with its new credential);
   with --no-start, not at all; otherwise in this process's place, in the foreground (exec).

Nothing secret is printed. docs/adding-a-host.md has the whole procedure.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from compute_agent import messages as msg
from compute_agent.env_file import DEFAULT_PATH, EnvFileError, check_writable, write_env_file

JOIN_PATH = "/compute/v2.1/os-host-joins"
UNIT = "kumo-compute-agent.service"
DEFAULT_LIBVIRT_URI = "qemu:///system"
HTTP_TIMEOUT = 30.0

# Exit codes: the cloud refused (or could not be reached), or this machine is not ready.
EXIT_REFUSED = 1
EXIT_LOCAL = 2


class JoinError(Exception):
    def __init__(self, message: str, code: int = EXIT_REFUSED) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Hypervisor:
    uri: str
    hypervisor_type: str
    version: int
    domain_type: str
    vcpus: int
    memory_mb: int

    def describe(self) -> str:
        major, rest = divmod(self.version, 1_000_000)
        minor, micro = divmod(rest, 1000)
        return (f"libvirt at {self.uri}: {self.hypervisor_type} {major}.{minor}.{micro}, "
                f"domain type {self.domain_type}, {self.vcpus} vCPUs, {self.memory_mb} MiB")


def check_libvirt(uri: str) -> Hypervisor:
    """Connect to libvirt at `uri` and read the host; JoinError if it cannot."""
    # Imported here: the driver loads libvirt, which `--help` and the unit tests of the rest of
    # this module do without.
    from compute_agent.drivers.base import DriverError
    from compute_agent.drivers.libvirt import LibvirtDriver
    from compute_agent.kvm import detect_domain_type

    domain_type = detect_domain_type(uri) if uri.startswith("qemu:///") else None
    driver = LibvirtDriver(uri, domain_type=domain_type)
    try:
        info = driver.host_info()
    except DriverError as exc:
        raise JoinError(f"libvirt does not answer at {uri}: {exc}", EXIT_LOCAL) from exc
    finally:
        driver.close()
    return Hypervisor(uri, info["hypervisor_type"], info["hypervisor_version"],
                      driver.domain_type, info["vcpus"], info["memory_mb"])


def request_join(url: str, token: str, host: str | None) -> dict[str, Any]:
    """POST the token to the cloud's join endpoint; its answer, or JoinError with its reason."""
    body: dict[str, Any] = {"token": token}
    if host:
        body["host"] = host
    request = urllib.request.Request(
        url.rstrip("/") + JOIN_PATH,
        data=json.dumps({"join": body}).encode(),
        headers={"Content-Type": "application/json", "Accept": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as response:
            answer = json.load(response)
    except urllib.error.HTTPError as exc:
        raise JoinError(f"{url} refused the join ({exc.code}): {_error_message(exc)}") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise JoinError(f"cannot reach {url}: {reason}") from exc
    except ValueError as exc:
        raise JoinError(f"{url} answered something that is not JSON") from exc
    joined = answer.get("join") if isinstance(answer, dict) else None
    if not isinstance(joined, dict) or not all(
        isinstance(joined.get(k), str) and joined[k]
        for k in ("host", "broker_url", "host_secret")
    ):
        raise JoinError(f"{url} answered without the host's credential")
    return joined


def _error_message(exc: urllib.error.HTTPError) -> str:
    """The message of a compute error body ({"unauthorized": {"message": …}})."""
    try:
        body = json.loads(exc.read() or b"{}")
        (detail,) = body.values()
        return str(detail["message"])
    except (ValueError, TypeError, KeyError, AttributeError):
        return exc.reason or "no reason given"


def local_address_towards(url: str) -> str:
    """The address this machine uses to reach `url`'s host: the one the control plane and the
    console relay reach it by, as a first guess (the configuration file can be edited)."""
    parts = urlsplit(url)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((parts.hostname or "127.0.0.1", parts.port or 80))  # sends nothing
            return str(probe.getsockname()[0])
        except OSError:
            return "127.0.0.1"


def agent_settings(joined: dict[str, Any], libvirt_uri: str, host_ip: str) -> dict[str, str]:
    """The environment the agent runs with (compute_agent.worker.parse_args reads it)."""
    values = {
        "KUMO_COMPUTE_HOST": joined["host"],
        "KUMO_LIBVIRT_URI": libvirt_uri,
        "CELERY_BROKER_URL": joined["broker_url"],
        "KUMO_HOST_SECRET": joined["host_secret"],
        "KUMO_HOST_IP": host_ip,
    }
    interval = joined.get("heartbeat_interval")
    if isinstance(interval, int | float) and interval > 0:
        values["KUMO_HEARTBEAT_INTERVAL"] = f"{interval:g}"
    internal_url = joined.get("internal_url")
    if isinstance(internal_url, str) and internal_url:
        # Where the host's metadata proxy forwards its guests' requests.
        values["KUMO_INTERNAL_URL"] = internal_url
    return values


def redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)).geturl()


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m compute_agent join",
        description="Join this machine to a Kumo cloud as a compute host and start its agent.",
    )
    parser.add_argument("url", help="the control plane's URL, e.g. http://controller:8000")
    parser.add_argument("token", help="a one-time join token (manage.py host-token --host NAME)")
    parser.add_argument("--host", help="this host's name; must be the one the token was made for "
                                       "(default: that one)")
    parser.add_argument("--config", default=str(DEFAULT_PATH),
                        help=f"where to write the agent's configuration (default: {DEFAULT_PATH})")
    parser.add_argument("--libvirt-uri", default=os.environ.get("KUMO_LIBVIRT_URI",
                                                                DEFAULT_LIBVIRT_URI),
                        help=f"the hypervisor this host runs guests on (default: "
                             f"{DEFAULT_LIBVIRT_URI})")
    parser.add_argument("--host-ip", help="the address the control plane and console proxy reach "
                                          "this host by (default: the one that routes to URL)")
    start = parser.add_mutually_exclusive_group()
    start.add_argument("--systemd", action="store_true",
                       help=f"start the agent as the systemd service {UNIT} (installed from "
                            "deploy/), enabled at boot")
    start.add_argument("--no-start", action="store_true",
                       help="write the configuration and stop")
    args = parser.parse_args(argv)
    if args.host is not None and not msg.HOST_NAME.match(args.host):
        parser.error(f"--host {args.host!r}: use letters, digits, '.', '_' or '-' (max 63)")
    if urlsplit(args.url).scheme not in ("http", "https"):
        parser.error(f"{args.url!r}: give the control plane's http:// or https:// URL")
    return args


def _systemctl(*args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["systemctl", *args], check=False, capture_output=True, text=True,
                              timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise JoinError(f"systemctl {args[0]} failed: {exc}", EXIT_LOCAL) from exc


def check_unit_installed(config: str) -> None:
    """JoinError unless systemd knows the agent's unit and it reads `config`, the file join is
    about to write."""
    found = _systemctl("cat", UNIT)
    if found.returncode != 0:
        raise JoinError(f"systemd has no {UNIT}: install deploy/{UNIT} in /etc/systemd/system "
                        "and run systemctl daemon-reload first (or join without --systemd)",
                        EXIT_LOCAL)
    reads = {line.partition("=")[2].strip().lstrip("-")
             for line in found.stdout.splitlines() if line.startswith("EnvironmentFile=")}
    if os.path.abspath(config) not in {os.path.abspath(path) for path in reads if path}:
        raise JoinError(f"{UNIT} does not read {config} (EnvironmentFile="
                        f"{', '.join(sorted(reads)) or 'none'}): it would not see the "
                        "configuration join writes", EXIT_LOCAL)


def start_with_systemd() -> None:
    """Enable the unit at boot and (re)start it, so it runs with the configuration just written."""
    for step in (("enable", UNIT), ("restart", UNIT)):
        done = _systemctl(*step)
        if done.returncode != 0:
            reason = (done.stderr or done.stdout or "").strip().splitlines()
            raise JoinError(f"systemctl {' '.join(step)} failed: "
                            f"{reason[-1] if reason else done.returncode} (journalctl -u {UNIT})",
                            EXIT_LOCAL)


def join(args: argparse.Namespace) -> dict[str, str]:
    """Steps 1 to 4; the agent's settings as written."""
    started = time.monotonic()
    hypervisor = check_libvirt(args.libvirt_uri)
    print(hypervisor.describe())
    try:
        check_writable(args.config)
    except EnvFileError as exc:
        raise JoinError(str(exc), EXIT_LOCAL) from exc
    if args.systemd:
        check_unit_installed(args.config)
    joined = request_join(args.url, args.token, args.host)
    settings = agent_settings(joined, args.libvirt_uri,
                              args.host_ip or local_address_towards(args.url))
    print(f"joined {args.url} as host {joined['host']} (queue "
          f"{msg.compute_queue(joined['host'])}, broker {redacted(joined['broker_url'])})")
    try:
        write_env_file(args.config, settings, comments=(
            f"Kumo compute agent of host {joined['host']}, written by "
            + f"`python -m compute_agent join {args.url}`.",
            "Secret: readable by its owner only. Read by kumo-compute-agent.service.",
        ))
    except EnvFileError as exc:
        raise JoinError(str(exc), EXIT_LOCAL) from exc
    print(f"wrote {args.config} (mode 0600) in {time.monotonic() - started:.1f} s")
    return settings


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    try:
        join(args)
    except JoinError as exc:
        print(f"join: {exc}", file=sys.stderr)
        return exc.code
    if args.no_start:
        print(f"not started; start it with: systemctl enable --now {UNIT} "
              f"(or python -m compute_agent --config {args.config})")
        return 0
    if args.systemd:
        try:
            start_with_systemd()
        except JoinError as exc:
            print(f"join: {exc}", file=sys.stderr)
            return exc.code
        print(f"started {UNIT} (enabled at boot); follow it with: journalctl -fu {UNIT}")
        return 0
    print(f"starting the agent: {sys.executable} -m compute_agent --config {args.config}",
          flush=True)
    os.execv(sys.executable, [sys.executable, "-m", "compute_agent", "--config", args.config])
