"""A container that starts again without the agent (its init rebooted it, or libvirt started it):
the driver hears it from libvirt's events and does what its own start does (names its veths,
copies its console), once, and only where no copier of its console runs yet.

libvirt is faked at its edge (a domain with a name, a state and its live XML); the copier is a
real process, as the check looks for one in /proc."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import libvirt
import pytest

from compute_agent.drivers.libvirt.driver import LibvirtDriver
from compute_agent.drivers.libvirt.events import console_copied


class Domain:
    def __init__(self, name: str, tty: str, active: bool = True) -> None:
        self._name, self.tty, self.active = name, tty, active

    def name(self) -> str:
        return self._name

    def isActive(self) -> bool:
        return self.active

    def XMLDesc(self, _flags: int = 0) -> str:
        return (f"<domain type='lxc'><name>{self._name}</name><devices>"
                f"<console type='pty' tty='{self.tty}'/></devices></domain>")


class Connection:
    """What _watch_container_restarts asks of a connection: callbacks and the running list."""

    def __init__(self, running: list[Domain]) -> None:
        self.running = running
        self.callbacks: dict[int, Callable[..., None]] = {}

    def domainEventRegisterAny(self, _dom: Any, event_id: int, callback: Callable[..., None],
                               _opaque: Any) -> int:
        self.callbacks[event_id] = callback
        return event_id

    def domainEventDeregisterAny(self, callback_id: int) -> None:
        self.callbacks.pop(callback_id)

    def listAllDomains(self, _flags: int = 0) -> list[Domain]:
        return self.running


@pytest.fixture
def container_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[
        tuple[LibvirtDriver, list[str], dict[str, Domain]]]:
    """An lxc:// driver whose _act finds the fake domains by name, and whose start hook records
    the containers it was run for."""
    driver = LibvirtDriver("lxc:///system?socket=/nonexistent", instances_dir=tmp_path)
    domains: dict[str, Domain] = {}
    started: list[str] = []
    monkeypatch.setattr(driver, "_act", lambda _what, name, fn: fn(domains[name]))
    monkeypatch.setattr(driver, "_container_started", lambda d: started.append(d.name()))
    yield driver, started, domains


def wait_for(condition: Callable[[], bool], seconds: float = 3) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


@pytest.fixture
def copier(tmp_path: Path) -> Iterator[str]:
    """A running `cat <path>` as containers.py starts for a console (blocked on a FIFO)."""
    fifo = tmp_path / "pty"
    os.mkfifo(fifo)
    cat = shutil.which("cat") or "/bin/cat"
    process = subprocess.Popen([cat, str(fifo)], stdout=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: console_copied(str(fifo)))
        yield str(fifo)
    finally:
        process.kill()
        process.wait()


def test_a_container_rebooted_by_its_init_is_named_and_logged_again(container_host) -> None:
    driver, started, domains = container_host
    rebooted = str(uuid.uuid4())
    domains[rebooted] = Domain(rebooted, "/dev/pts/nobody-reads-this")
    conn = Connection([])
    driver._watch_container_restarts(conn)
    conn.callbacks[libvirt.VIR_DOMAIN_EVENT_ID_REBOOT](conn, domains[rebooted], None)
    assert wait_for(lambda: started == [rebooted])


def test_started_events_of_the_agents_own_starts_do_nothing_more(container_host, copier) -> None:
    """The agent's start copies the console before the event is handled (under its lock): a
    copier of the container's pty runs, so nothing is done twice (two copiers would log each
    line twice). Other events and domains that are not Kumo's are ignored."""
    driver, started, domains = container_host
    own, other = str(uuid.uuid4()), str(uuid.uuid4())
    domains[own] = Domain(own, copier)
    domains[other] = Domain(other, "/dev/pts/nobody-reads-this")
    conn = Connection([])
    driver._watch_container_restarts(conn)
    lifecycle = conn.callbacks[libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE]
    lifecycle(conn, domains[own], libvirt.VIR_DOMAIN_EVENT_STARTED, 0, None)
    lifecycle(conn, domains[other], libvirt.VIR_DOMAIN_EVENT_STOPPED, 0, None)
    lifecycle(conn, Domain("operators-ct", "/dev/pts/x"), libvirt.VIR_DOMAIN_EVENT_STARTED, 0,
              None)
    # Then one that is handled, so that the wait below knows the queue was worked through.
    lifecycle(conn, domains[other], libvirt.VIR_DOMAIN_EVENT_STARTED, 0, None)
    assert wait_for(lambda: started == [other])
    time.sleep(0.1)
    assert started == [other]


def test_a_new_connection_looks_at_every_running_container(container_host, copier) -> None:
    """A restart the agent was not there for (its agent or libvirtd restarted meanwhile) is
    caught on the next connection; a stopped one is left alone."""
    driver, started, domains = container_host
    logged, unlogged, stopped = (str(uuid.uuid4()) for _ in range(3))
    domains[logged] = Domain(logged, copier)
    domains[unlogged] = Domain(unlogged, "/dev/pts/nobody-reads-this")
    domains[stopped] = Domain(stopped, "/dev/pts/nobody-reads-this", active=False)
    conn = Connection([domains[logged], domains[unlogged], domains[stopped]])
    driver._watch_container_restarts(conn)
    assert wait_for(lambda: started == [unlogged])
    driver._watch_container_restarts(conn)  # the same connection: not registered twice
    assert len(conn.callbacks) == 2
    driver._disconnecting(conn)
    assert conn.callbacks == {}


def test_a_vm_host_does_not_watch_restarts(tmp_path: Path) -> None:
    driver = LibvirtDriver("qemu:///system?socket=/nonexistent", instances_dir=tmp_path)
    conn = Connection([])
    driver._connected(conn)
    assert conn.callbacks == {}
    assert driver._restarted is None
