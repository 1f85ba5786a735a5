"""The many-hosts stack the e2e tests share (one per test session, see tests/e2e/conftest.py): one
stack (tests/stack.py: web, scheduler, conductor, beat, RabbitMQ) over three simulated hosts
(simhosts: a network and mount namespace each, with its own libvirtd running real qemu guests and
the linuxbridge data plane) and the storage host storage-1 (a volume host on their fabric), and
what tests do with it through the APIs a user has.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.stack import ROOT, ApiClient, Stack

libvirt = pytest.importorskip("libvirt")

V = "/compute/v2.1"
VERSION = "2.60"
BOOT_TIMEOUT = 180.0
MOVE_TIMEOUT = 240.0
ARTIFACTS = Path(os.environ.get("KUMO_ARTIFACTS_DIR", ROOT / "artifacts")) / "multihost"
FIGURES: dict[str, object] = {}

TICKER = """#!/bin/sh
n=0
while :; do
    n=$((n + 1))
    echo "TICK $n"
    sleep 1
done
"""


class Cloud:
    def __init__(self, stack: Stack, api: ApiClient, image: str) -> None:
        self.stack, self.api, self.image = stack, api, image
        self.hosts = {h.name: h for h in stack.hosts}
        # storage-1: the volume host on the same fabric (simhosts/storage.py), which the compute
        # hosts' qemus reach over NBD; its volume files are under .volumes_dir.
        self.storage = {h.name: h for h in stack.storage_hosts}

    def boot(self, name: str, *, group: str | None = None, ticker: bool = False) -> str:
        server: dict = {"name": name, "imageRef": self.image, "flavorRef": "1",
                        "networks": "none"}
        if ticker:
            server["user_data"] = base64.b64encode(TICKER.encode()).decode()
        body: dict = {"server": server}
        if group:
            body["os:scheduler_hints"] = {"group": group}
        created = self.api.post(f"{V}/servers", body)
        assert created.status_code == 202, created.text
        return created.json()["server"]["id"]

    def active(self, *server_ids: str) -> list[dict]:
        found = [self.api.wait_for(s, {"ACTIVE", "ERROR"}, timeout=BOOT_TIMEOUT)
                 for s in server_ids]
        assert [s["status"] for s in found] == ["ACTIVE"] * len(found), found
        return found

    def show(self, server_id: str) -> dict:
        return self.api.get(f"{V}/servers/{server_id}").json()["server"]

    def host_of(self, server_id: str) -> str:
        return self.show(server_id)["OS-EXT-SRV-ATTR:host"]

    def action(self, server_id: str, body: dict, expect: int = 202) -> None:
        response = self.api.post(f"{V}/servers/{server_id}/action", body)
        assert response.status_code == expect, response.text

    def settled(self, server_id: str, timeout: float = MOVE_TIMEOUT) -> dict:
        """The server once no task runs on it."""
        deadline = time.monotonic() + timeout
        while True:
            server = self.show(server_id)
            if server["OS-EXT-STS:task_state"] is None:
                return server
            assert time.monotonic() < deadline, f"{server_id} still {server['status']}"
            time.sleep(0.3)

    def migrations(self, server_id: str) -> list[dict]:
        return self.api.get(f"{V}/os-migrations?instance_uuid={server_id}").json()["migrations"]

    def delete(self, *server_ids: str) -> None:
        for server_id in server_ids:
            self.api.delete(f"{V}/servers/{server_id}")
        for server_id in server_ids:
            self.api.wait_gone(server_id, timeout=BOOT_TIMEOUT)

    def console_log(self, host: str, server_id: str) -> Path:
        return self.hosts[host].dir / "instances" / server_id / "console.log"

    def domains(self, host: str) -> list[str]:
        """Every domain the host's libvirtd knows (running or not), by uuid."""
        conn = libvirt.open(self.hosts[host].uri)
        try:
            return [d.UUIDString() for d in conn.listAllDomains()]
        finally:
            conn.close()

    def instance_dirs(self, host: str) -> list[str]:
        root = self.hosts[host].dir / "instances"
        return sorted(p.name for p in root.iterdir() if re.fullmatch(r"[0-9a-f-]{36}", p.name))

    def usage(self) -> dict[str, tuple[int, int]]:
        nodes = self.api.get(f"{V}/os-hypervisors/detail").json()["hypervisors"]
        return {n["hypervisor_hostname"]: (n["vcpus_used"], n["memory_mb_used"]) for n in nodes}

    def slow_copies(self, host: str, server_id: str, mib_per_s: int) -> None:
        """Cap the guest's migration bandwidth (libvirt's own per-domain setting), so that a copy
        lasts long enough to act on it halfway."""
        conn = libvirt.open(self.hosts[host].uri)
        try:
            conn.lookupByUUIDString(server_id).migrateSetMaxSpeed(mib_per_s, 0)
        finally:
            conn.close()

    def set_enabled(self, host: str, enabled: bool) -> None:
        services = self.api.get(f"{V}/os-services?binary=nova-compute&host={host}").json()
        (service,) = services["services"]
        body = {"status": "enabled"} if enabled else {"status": "disabled",
                                                      "disabled_reason": "test"}
        response = self.api.put(f"{V}/os-services/{service['id']}", body)
        assert response.status_code == 200, response.text


def ticks(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"TICK (\d+)\r?\n", text)]


def wait_until(check: Callable[[], bool], what: str, timeout: float) -> float:
    """Seconds until `check()` holds, polled every 0.2 s; fails saying `what` after `timeout`."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout, f"timed out waiting for {what}"
        time.sleep(0.2)
    return time.monotonic() - started


def wait_for_text(path: Path, needle: str, timeout: float = BOOT_TIMEOUT) -> str:
    deadline = time.monotonic() + timeout
    while True:
        text = path.read_text(errors="replace") if path.exists() else ""
        if needle in text:
            return text
        assert time.monotonic() < deadline, f"{needle!r} never appeared in {path}"
        time.sleep(0.2)


class TickWatch:
    """When each TICK first appeared in any of the given console logs (the guest's old and new
    host): a gap across the switch longer than the usual second is the downtime a user saw."""

    def __init__(self, *logs: Path) -> None:
        self.logs = logs
        self.first_seen: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            for log in self.logs:
                if log.exists():
                    for n in ticks(log.read_text(errors="replace")):
                        self.first_seen.setdefault(n, now)
            time.sleep(0.02)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def worst_gap_ms(self) -> int:
        seen = sorted(self.first_seen.items())
        gaps = [b[1] - a[1] for a, b in itertools.pairwise(seen) if b[0] == a[0] + 1]
        usual = sorted(gaps)[len(gaps) // 2]
        return round((max(gaps) - usual) * 1000)


def _netns() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    return [line.split()[0] for line in out.stdout.splitlines() if line.strip()]


def figure(name: str, value: object) -> None:
    FIGURES[name] = value




@contextlib.contextmanager
def running_cloud(guest_image: Path) -> Iterator[Cloud]:
    """The shared stack, with the tiny guest uploaded; on the way out its figures are written
    and no namespace of its hosts may be left behind."""
    stack = Stack("multihost", agents=[], simulated_hosts=3, volume_hosts=1, schedulers=1,
                  broker="rabbitmq",
                  extra_env={"KUMO_TASK_DEADLINES": "scheduling=30,spawning=180,migrating=300,"
                                                    "default=120",
                             # Failover (tests/e2e/test_failover.py): the simulated hosts are
                             # fenced by simhosts, except compute-3, which waits for a person.
                             "KUMO_FENCING_DRIVER": "simulated",
                             "KUMO_FENCING_HOSTS": json.dumps({"compute-3": {"driver": "manual"}}),
                             "KUMO_HOST_FAILURE_AFTER": "10"})
    with stack.running():
        api = stack.client(version=VERSION)
        image = api.upload_image("kumo-tiny", guest_image.read_bytes())
        yield Cloud(stack, api, image)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "figures.json").write_text(json.dumps(FIGURES, indent=2) + "\n")
    print("\n[multihost figures]\n" + "\n".join(f"  {k}: {v}" for k, v in FIGURES.items()))
    left = [ns for ns in _netns() if ns.startswith(f"kumo-{stack.host_tag}-")]
    assert not left, f"namespaces of the stack's hosts were left behind: {left}"
