"""Connections to another host's libvirt (a migration's destination), each bounded in time.

A host whose link is down answers nothing, not even a reset, so a TCP connection to it waits for
the kernel's own timeouts (minutes). Two bounds keep the agent's calls short instead: opening a
connection is given CONNECT_TIMEOUT seconds, and an open one sends libvirt keepalives, so any call
on it fails within about KEEPALIVE_INTERVAL * (KEEPALIVE_COUNT + 1) seconds once the peer falls
silent. Keepalives need libvirt's event loop running in the process (ensure_event_loop).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import urllib.parse
from collections.abc import Iterator

import libvirt

from compute_agent import messages as msg
from compute_agent.drivers.base import DriverError
from compute_agent.drivers.libvirt.errors import error_text
from compute_agent.drivers.libvirt.states import domain_power_state

LOG = logging.getLogger(__name__)

CONNECT_TIMEOUT = 20.0
KEEPALIVE_INTERVAL = 5
KEEPALIVE_COUNT = 3

_loop_lock = threading.Lock()
_loop_started = False


def ensure_event_loop() -> None:
    """Run libvirt's default event loop in a daemon thread, once per process (as Nova does); it
    must be registered before the connections that rely on it are opened."""
    global _loop_started
    with _loop_lock:
        if _loop_started:
            return
        libvirt.virEventRegisterDefaultImpl()
        threading.Thread(target=_run_event_loop, name="libvirt-events", daemon=True).start()
        _loop_started = True


def _run_event_loop() -> None:
    while True:
        try:
            libvirt.virEventRunDefaultImpl()
        except libvirt.libvirtError:
            LOG.exception("libvirt's event loop failed an iteration")


def check_peer_uri(uri: str) -> str:
    """Refuse a URI that cannot name another host's libvirt from inside this host's libvirtd.

    `qemu:///system?socket=…` is opened by a source libvirtd in-process, ignoring the socket, so
    it names the source itself ("Attempt to migrate guest to the same host"); qemu+unix forces the
    remote driver. libvirt's test driver cannot migrate at all (and hangs when asked to).
    """
    parts = urllib.parse.urlsplit(uri)
    driver, _, transport = parts.scheme.partition("+")
    if driver != "qemu":
        raise DriverError(f"cannot migrate to {uri!r}: only qemu hosts take migrations")
    if not transport and not parts.hostname:
        raise DriverError(
            f"cannot migrate to {uri!r}: a local qemu URI names this host itself; give the "
            "destination as qemu+unix:// (with its socket) or qemu+tcp:// instead"
        )
    return uri


def migration_address(uri: str) -> str | None:
    """The destination's address for the migration stream itself (`tcp://host`), taken from a
    network URI; None for a unix socket URI (the destination's libvirt then says where)."""
    parts = urllib.parse.urlsplit(uri)
    if not parts.hostname or parts.scheme.endswith("+unix"):
        return None
    host = parts.hostname
    return f"tcp://[{host}]" if ":" in host else f"tcp://{host}"


def open_peer(uri: str, timeout: float = CONNECT_TIMEOUT) -> libvirt.virConnect:
    """Open `uri` within `timeout` seconds, with keepalives on; DriverError otherwise. A connect
    that answers after the deadline is closed by the thread that made it."""
    ensure_event_loop()
    outcome: list[libvirt.virConnect | libvirt.libvirtError] = []
    abandoned = False
    done = threading.Event()
    guard = threading.Lock()

    def connect() -> None:
        try:
            result: libvirt.virConnect | libvirt.libvirtError = libvirt.open(uri)
        except libvirt.libvirtError as exc:
            result = exc
        with guard:
            if abandoned:
                if not isinstance(result, libvirt.libvirtError):
                    _close_quietly(result)
                return
            outcome.append(result)
        done.set()

    threading.Thread(target=connect, name="libvirt-peer-connect", daemon=True).start()
    done.wait(timeout)
    with guard:
        if not outcome:
            abandoned = True
            raise DriverError(f"cannot reach {uri}: no answer within {timeout:.0f} s")
        result = outcome[0]
    if isinstance(result, libvirt.libvirtError):
        raise DriverError(f"cannot connect to {uri}: {error_text(result)}")
    try:
        result.setKeepAlive(KEEPALIVE_INTERVAL, KEEPALIVE_COUNT)
    except libvirt.libvirtError as exc:
        LOG.warning("no keepalive on the connection to %s: %s", uri, exc)
    return result


@contextlib.contextmanager
def peer(uri: str, timeout: float = CONNECT_TIMEOUT) -> Iterator[libvirt.virConnect]:
    conn = open_peer(uri, timeout)
    try:
        yield conn
    finally:
        _close_quietly(conn)


def _close_quietly(conn: libvirt.virConnect) -> None:
    try:
        conn.close()
    except libvirt.libvirtError:
        pass  # a dead peer's connection: nothing left to release


def power_state_on(conn: libvirt.virConnect, uri: str, instance_uuid: str) -> str:
    """The instance's power state on the peer at `uri`; POWER_NOSTATE when it has no active
    domain there."""
    try:
        domain = conn.lookupByUUIDString(instance_uuid)
        return domain_power_state(domain) if domain.isActive() else msg.POWER_NOSTATE
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            return msg.POWER_NOSTATE
        raise DriverError(f"cannot ask {uri} about {instance_uuid}: {error_text(exc)}") from exc
