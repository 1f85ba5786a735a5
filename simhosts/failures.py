"""A simulated host's failure, its fencing and its return (see the package docstring).

A failed host is a machine that lost power: every process it ran is killed at once (SIGKILL, no
clean shutdown: guests, libvirtd, the agent and what the agent started in namespaces of its own)
and both its wires are cut, so nothing of it answers on the fabric or the external network. Its
directory keeps everything a disk would: libvirt's domain definitions, the instances' disks. A
marker file in that directory says the host is failed; the agent's supervisor (supervise.py) does
not start the agent again while it is there.

`fence` is what a fencing driver calls before evacuating: the same as `fail`, and an answer it can
trust. It raises unless, once it is done, no process of the host is left and both links are down,
so an already failed (or crashed) host is fenced again at no cost and confirmed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

from .hosts import (
    EXTERNAL_INTERFACE,
    HostError,
    SimHost,
    _alive,
    _mount_namespaces,
    _mount_ns,
    _mount_ns_pids,
    _netns_pids,
    _remember_mount_ns,
    existing,
    fabric_ns,
    start_libvirtd,
)

# Killed with SIGKILL, processes are gone in milliseconds; a qemu tearing down guest memory may
# take a little longer. Past this, a survivor means fencing failed.
KILL_TIMEOUT = 1.5


def failed_marker(host: SimHost) -> Path:
    return host.dir / "failed"


def is_failed(host: SimHost) -> bool:
    return failed_marker(host).exists()


def find(tag: str, name: str) -> SimHost:
    for host in existing(tag):
        if host.name == name:
            return host
    raise HostError(f"no host {name!r} in tag {tag!r}: "
                    f"{sorted(h.name for h in existing(tag))}")


def fail(tag: str, name: str) -> SimHost:
    """Power the host off: kill every process it has, cut both its links, mark it failed.
    Idempotent; raises HostError if a process survives or a link stays up."""
    host = find(tag, name)
    # The marker first: the agent's supervisor, seeing its agent die, must find the host failed.
    failed_marker(host).touch()
    problems = [_cut_links(host), _kill_everything(host)]  # both tried, whatever the other did
    if any(problems):
        raise HostError(f"{host.name}: " + "; ".join(p for p in problems if p))
    return host


def fence(tag: str, name: str) -> SimHost:
    """Make sure the host can no longer run or reach anything (a fencing driver's call): `fail`,
    whose checks make it a confirmation. Succeeds on a host already failed."""
    return fail(tag, name)


def recover(tag: str, name: str, timeout: float = 60) -> SimHost:
    """Power the host back on: links up, libvirtd started, the marker removed (then the agent's
    supervisor starts the agent). The host's old guests stay defined and shut off: what becomes
    of them is the control plane's call, through the agent."""
    host = find(tag, name)
    fab = fabric_ns(tag)
    for ns, dev in ((fab, f"h{host.index}"), (fab, f"x{host.index}"),
                    (host.netns, "eth0"), (host.netns, EXTERNAL_INTERFACE)):
        _ip(ns, "link", "set", dev, "up")
    if host.libvirtd_pid() is None:
        # No guest comes back on its own, even one marked autostart: libvirtd finds the ones that
        # ran crashed (shut off), and it autostarts only on a machine's first start (its marker,
        # run/qemu/autostarted, is kept in the host's directory).
        start_libvirtd(host, timeout)
    failed_marker(host).unlink(missing_ok=True)
    return host


# --- helpers


def _cut_links(host: SimHost) -> str:
    """Both of the host's wires, cut at the fabric's end (a pulled cable: the host cannot put its
    end back up). A wire that no longer exists is cut too. What could not be done, or ''."""
    fab = fabric_ns(host.tag)
    up = []
    for dev in (f"h{host.index}", f"x{host.index}"):
        subprocess.run(["ip", "-n", fab, "link", "set", dev, "down"], capture_output=True,
                       check=False)
        if _link_up(fab, dev):
            up.append(dev)
    return f"could not set {', '.join(up)} down in {fab}" if up else ""


def _link_up(ns: str, dev: str) -> bool:
    result = subprocess.run(["ip", "-n", ns, "-o", "link", "show", dev], capture_output=True,
                            text=True, check=False)
    if result.returncode != 0:
        return False  # no such namespace or device: nothing can pass
    flags = result.stdout.split("<", 1)[-1].split(">", 1)[0].split(",")
    return "UP" in flags


def _kill_everything(host: SimHost) -> str:
    """Every process of the host killed, and gone; what survived, or ''."""
    pids = _processes(host)
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + KILL_TIMEOUT
    while True:
        left = [pid for pid in _processes(host) if _alive(pid)]
        if not left:
            return ""
        if time.monotonic() > deadline:
            return f"processes survived SIGKILL: {left}"
        for pid in left:  # started meanwhile (a process forking as it died)
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)


def _processes(host: SimHost) -> set[int]:
    """Every process of the host: its guests (by pid file: libvirt gives each qemu a mount
    namespace of its own), anything in its network namespace (libvirtd, guests), everything in
    its libvirtd's mount namespace (the agent and what it started in network namespaces of its
    own), and the agent's own in every mount namespace the host had before (as `down`)."""
    found: set[int] = set()
    for pid_file in (host.dir / "run" / "qemu").glob("*.pid"):
        with contextlib.suppress(OSError, ValueError):
            pid = int(pid_file.read_text().strip())
            if _alive(pid) and _is_qemu(pid):
                found.add(pid)
    found.update(_netns_pids(host.netns))
    libvirtd = host.libvirtd_pid()
    current = None
    if libvirtd:
        _remember_mount_ns(host, libvirtd)
        current = _mount_ns(libvirtd)
    for mount_ns in _mount_namespaces(host):
        # An earlier namespace's id may since have been given to someone else's: there, only
        # what is recognisably the agent's counts.
        found.update(_mount_ns_pids(mount_ns, only_ours=mount_ns != current))
    found.discard(os.getpid())
    return {pid for pid in found if _alive(pid)}


def _is_qemu(pid: int) -> bool:
    """A stale pid file's number may belong to another process by now."""
    try:
        return b"qemu" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _ip(ns: str, *args: str) -> None:
    result = subprocess.run(["ip", "-n", ns, *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise HostError(f"ip -n {ns} {' '.join(args)}: {result.stderr.strip()}")
