"""Guests that stop on their own, heard from libvirt as it happens.

A guest whose qemu process dies (killed, out of memory, a qemu crash), that panics, or that powers
itself off is told to the watcher (Driver.watch_guests) within a fraction of a second, so the agent
reports its host at once and the control plane restarts the guest (cloud/conductor/
guest_recovery.py) instead of learning it at the next heartbeat.

libvirt calls a lifecycle callback on its event loop's thread (peers.ensure_event_loop), where a
call back into libvirt can deadlock a remote connection; the callback only queues the domain's
name, and a thread of the driver's own calls the watcher, once for a burst of stops. Only hosts
with real guests are watched: libvirt's test driver runs nothing that can die on its own.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import libvirt

from compute_agent.drivers.libvirt import peers
from compute_agent.drivers.libvirt.connection import LibvirtBase

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
        if callback is None:
            return
        try:
            conn.domainEventDeregisterAny(callback)
        except libvirt.libvirtError:
            pass  # a dead connection took its callbacks with it

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
