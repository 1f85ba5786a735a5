"""Instance HA on a live host, end to end on the shared many-hosts stack (tests/e2e/multihost.py):
a real qemu guest whose qemu process is killed (SIGKILL, as the kernel's OOM killer would) runs
again on the same host within seconds, with its restart recorded as an action and a fault.

The guest prints a counter on its serial console every second; its console log starts afresh with
each qemu process, so a counter that starts again from 1 and keeps going is a second boot the
guest itself made. One guest; well under a minute with the shared stack up.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import psycopg
import pytest

from tests.e2e.multihost import BOOT_TIMEOUT, Cloud, V, figure, ticks, wait_for_text

pytestmark = pytest.mark.e2e

RECOVERY_TIMEOUT = 60.0
# Power sync leaves a row alone this long after it changed (KUMO_POWER_SYNC_GRACE's default): a
# guest killed right after it became ACTIVE waits it out; one that has run longer is seen at once.
POWER_SYNC_GRACE = 20.0


@pytest.fixture(scope="module")
def cloud(multihost: Cloud) -> Cloud:
    return multihost


def qemu_pid(cloud: Cloud, host: str, server_id: str) -> int | None:
    """The guest's qemu process, from the pid file its host's libvirtd keeps (/run/libvirt/qemu
    inside the host's mount namespace is the host's own directory); None when it runs none."""
    pid_file = cloud.hosts[host].dir / "run" / "qemu" / f"{server_id}.pid"
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def faults(cloud: Cloud, server_id: str) -> list[str]:
    """The instance's faults, newest first (the database as a witness: the API shows a fault only
    while a server is in ERROR)."""
    url = cloud.stack.env["DATABASE_URL"].replace("postgres://", "postgresql://")
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT message FROM compute_instancefault WHERE instance_id = %s "
                            "ORDER BY created_at DESC", (server_id,)).fetchall()
    return [message for (message,) in rows]


def agent_log(cloud: Cloud, host: str) -> str:
    """What the host's agent logged: its stdout, the log file tests/stack.py gave it, read through
    the process itself (another stack of the same name may have replaced the directory)."""
    return Path(f"/proc/{cloud.stack.procs[host].pid}/fd/1").read_text(errors="replace")


def wait_for(what: str, predicate, timeout: float = RECOVERY_TIMEOUT):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_a_guest_whose_qemu_is_killed_runs_again_on_its_host(cloud: Cloud) -> None:
    server_id = cloud.boot("ha-crash", ticker=True)
    try:
        (server,) = cloud.active(server_id)
        active = time.monotonic()
        host = server["OS-EXT-SRV-ATTR:host"]
        log: Path = cloud.console_log(host, server_id)
        wait_for_text(log, "TICK 3", timeout=BOOT_TIMEOUT)
        time.sleep(max(0.0, active + POWER_SYNC_GRACE + 1 - time.monotonic()))
        counted = len(ticks(log.read_text(errors="replace")))
        first = qemu_pid(cloud, host, server_id)
        assert first, "the guest has no qemu process"

        os.kill(first, signal.SIGKILL)
        killed = time.monotonic()

        second = wait_for("a new qemu process", lambda: (p := qemu_pid(cloud, host, server_id))
                          and p != first and p)
        restarted = time.monotonic()
        assert restarted - killed < 10, f"{restarted - killed:.1f} s to restart the guest"
        # The agent heard of the death from libvirt as it happened (on a real host the next
        # heartbeat may be 10 s away; this stack's beat every second, so either may come first).
        wait_for("the agent to hear of the death", lambda: any(
            "guests stopped without being asked" in line and server_id in line
            for line in agent_log(cloud, host).splitlines()), timeout=5)
        # The guest boots again: its console log, begun afresh by the new process (it was at
        # `counted` ticks), counts from 1 once more.
        def counting_again() -> bool:
            seen = ticks(log.read_text(errors="replace")) if log.exists() else []
            return seen[:3] == [1, 2, 3]

        wait_for("the console log to start afresh",
                 lambda: len(ticks(log.read_text(errors="replace"))) < counted)
        wait_for("the guest to boot again and count", counting_again, timeout=BOOT_TIMEOUT)
        server = wait_for("the server settled", lambda: (s := cloud.show(server_id))
                          and s["OS-EXT-STS:task_state"] is None and s)
        assert (server["status"], server["OS-EXT-STS:power_state"]) == ("ACTIVE", 1)
        assert server["OS-EXT-SRV-ATTR:host"] == host  # on the same host
        assert qemu_pid(cloud, host, server_id) == second

        actions = cloud.api.get(f"{V}/servers/{server_id}/os-instance-actions").json()[
            "instanceActions"]
        assert actions[0]["action"] == "reboot"
        assert actions[0]["request_id"].startswith("req-recover-crashed-")
        assert faults(cloud, server_id)[0] == (
            f"The guest's qemu process died; restarting it on {host} (attempt 1 of 3).")
        figure("instance HA: qemu killed to a new qemu process (s)",
               round(restarted - killed, 1))
    finally:
        cloud.delete(server_id)
