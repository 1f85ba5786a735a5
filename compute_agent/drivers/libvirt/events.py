"""Guests that stop on their own, heard from libvirt as it happens.

A guest whose qemu process dies (killed, out of memory, a qemu crash), that panics, or that powers
itself off is told to the watcher (Driver.watch_guests) within a fraction of a second, so the agent
reports its host at once and the control plane restarts the guest (cloud/conductor/
guest_recovery.py) instead of learning it at the next heartbeat.

libvirt calls a lifecycle callback on its event loop's thread (peers.ensure_event_loop), where a
call back into libvirt can deadlock a remote connection; the callback only queues the domain's
name, and a thread of the driver's own calls the watcher, once for a burst of stops. Only hosts
with real guests are watched: libvirt's test driver runs nothing that can die on its own.

A container host also hears of containers that start again without the agent: one whose init
rebooted it (libvirt's LXC driver starts it again at once, on_reboot "restart", and says REBOOT,
nothing else), or one libvirt started (STARTED). Its veths are made anew and, where libvirt names
them vnetN, carry nothing (the host's rules drop vnet+: compute_agent/network/secgroups.py) until
renamed as their ports' taps; its console is a new pty, and the copier of the old one ended with
it. A thread of the driver's own then does what the agent does after a start of its own
(_container_started: the veths renamed, the console copied), unless a copier of the container's
current pty is running already (the STARTED of the agent's own start, which did it). On each new
connection every running container is looked at so, for a restart the agent was not there for.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import libvirt

from compute_agent.drivers.libvirt import peers
from compute_agent.drivers.libvirt.connection import LibvirtBase, running_domains

LOG = logging.getLogger(__name__)

# Stops nobody asked for: qemu died, the guest crashed or powered itself off. A destroy (the
# agent's own stop, delete or hard reboot), a save or a migration's end is the agent's doing and
# is reported when it finishes anyway.
UNASKED_STOPS = frozenset({
    libvirt.VIR_DOMAIN_EVENT_STOPPED_FAILED,
    libvirt.VIR_DOMAIN_EVENT_STOPPED_CRASHED,
    libvirt.VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN,
})
# How long a stop waits for others before the watcher hears of it: a host losing many guests at
# once makes one report, not one each.
GATHER_SECONDS = 0.2

GuestsStopped = Callable[[list[str]], None]


class GuestEventsMixin(LibvirtBase):
    _on_guests_stopped: GuestsStopped | None = None
    _stopped: queue.SimpleQueue[str] | None = None
    _event_callbacks: dict[int, int] | None = None  # id(connection) -> libvirt's callback id
    _restarted: queue.SimpleQueue[str] | None = None
    _restart_callbacks: dict[int, list[int]] | None = None  # id(connection) -> callback ids

    def watch_guests(self, on_stopped: GuestsStopped) -> None:
        if not self.has_disks:
            return
        peers.ensure_event_loop()
        with self._lock:
            self._on_guests_stopped = on_stopped
            if self._stopped is None:
                self._stopped = queue.SimpleQueue()
                threading.Thread(target=self._tell_stops, name="guest-stops",
                                 daemon=True).start()
            if self._conn is not None:
                self._connected(self._conn)

    def _connected(self, conn: libvirt.virConnect) -> None:
        super()._connected(conn)
        if self.is_container:
            self._watch_container_restarts(conn)
        # Each connection has callbacks of its own: a reopened one (libvirtd restarted) is
        # watched again.
        if self._on_guests_stopped is None:
            return
        callbacks = self._event_callbacks = self._event_callbacks or {}
        if id(conn) in callbacks:
            return
        try:
            callbacks[id(conn)] = conn.domainEventRegisterAny(
                None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._lifecycle_event, None)
        except libvirt.libvirtError as exc:
            # Not fatal: the heartbeat still finds stopped guests, only later.
            LOG.warning("cannot watch guests on %s: %s", self.uri, exc)

    def _disconnecting(self, conn: libvirt.virConnect) -> None:
        callback = (self._event_callbacks or {}).pop(id(conn), None)
        restarts = (self._restart_callbacks or {}).pop(id(conn), [])
        for each in ([callback] if callback is not None else []) + restarts:
            try:
                conn.domainEventDeregisterAny(each)
            except libvirt.libvirtError:
                pass  # a dead connection took its callbacks with it
        super()._disconnecting(conn)

    def _lifecycle_event(self, _conn: Any, domain: libvirt.virDomain, event: int, detail: int,
                         _opaque: Any) -> None:
        """On libvirt's event loop thread: queue the guest if it stopped unasked, nothing more."""
        stopped = (event == libvirt.VIR_DOMAIN_EVENT_STOPPED and detail in UNASKED_STOPS) or \
            event == libvirt.VIR_DOMAIN_EVENT_CRASHED
        if not stopped or self._stopped is None:
            return
        name = domain.name()
        try:
            instance_uuid = str(uuid.UUID(name))
        except ValueError:
            return  # not an instance of Kumo's
        self._stopped.put(instance_uuid)

    def _tell_stops(self) -> None:
        assert self._stopped is not None
        while True:
            stopped = [self._stopped.get()]
            time.sleep(GATHER_SECONDS)
            while not self._stopped.empty():
                stopped.append(self._stopped.get())
            uuids = sorted(set(stopped))
            LOG.warning("guests stopped without being asked: %s", ", ".join(uuids))
            watcher = self._on_guests_stopped
            try:
                if watcher is not None:
                    watcher(uuids)
            except Exception:
                LOG.exception("telling that guests stopped failed")

    # --- containers that start again without the agent

    def _watch_container_restarts(self, conn: libvirt.virConnect) -> None:
        callbacks = self._restart_callbacks = self._restart_callbacks or {}
        if id(conn) in callbacks:
            return
        if self._restarted is None:
            self._restarted = queue.SimpleQueue()
            threading.Thread(target=self._tend_restarts, name="container-restarts",
                             daemon=True).start()
        try:
            callbacks[id(conn)] = [
                conn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_REBOOT,
                                            self._reboot_event, None),
                conn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                                            self._start_event, None)]
        except libvirt.libvirtError as exc:
            # The connection's check below and the next one's still catch up, only later.
            LOG.warning("cannot watch containers restarting on %s: %s", self.uri, exc)
        for domain in running_domains(conn, "to check for restarts"):
            self._queue_restart(domain)

    def _reboot_event(self, _conn: Any, domain: libvirt.virDomain, _opaque: Any) -> None:
        """On libvirt's event loop thread: queue the container, nothing more."""
        self._queue_restart(domain)

    def _start_event(self, _conn: Any, domain: libvirt.virDomain, event: int, _detail: int,
                     _opaque: Any) -> None:
        if event == libvirt.VIR_DOMAIN_EVENT_STARTED:
            self._queue_restart(domain)

    def _queue_restart(self, domain: libvirt.virDomain) -> None:
        try:
            instance_uuid = str(uuid.UUID(domain.name()))
        except ValueError:
            return  # not an instance of Kumo's
        if self._restarted is not None:
            self._restarted.put(instance_uuid)

    def _tend_restarts(self) -> None:
        assert self._restarted is not None
        while True:
            instance_uuid = self._restarted.get()
            try:
                self._act("restart check", instance_uuid, self._container_restarted)
            except Exception:
                # Gone meanwhile, or its NIC could not be named: _container_started stopped it
                # and said why; the next event or connection looks again.
                LOG.exception("container %s, started again without the agent", instance_uuid)

    def _container_restarted(self, domain: libvirt.virDomain) -> None:
        """Under the driver's lock: a running container whose console nobody copies started
        without the agent; do what its start would have done."""
        if not domain.isActive():
            return
        console = ET.fromstring(domain.XMLDesc(0)).find("devices/console")
        tty = console.get("tty") if console is not None else None
        if tty and console_copied(tty):
            return  # the agent's own start (or a check before this one) saw to it
        LOG.info("container %s started again without the agent: naming its NICs and copying "
                 "its console", domain.name())
        self._container_started(domain)


def console_copied(tty: str) -> bool:
    """Whether a copier of `tty` (containers.py's `cat <tty>`) runs in this mount namespace, where
    the pty path means what it means here."""
    mine = os.readlink("/proc/self/ns/mnt")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if (len(argv) >= 2 and os.path.basename(argv[0]) == b"cat"
                    and argv[1] == tty.encode() and os.readlink(entry / "ns" / "mnt") == mine):
                return True
        except OSError:
            continue  # gone meanwhile
    return False
