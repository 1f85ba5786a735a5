"""Simulated storage hosts: a volume host (python -m compute_agent volume) on the hosts' fabric.

A storage host is a network namespace `kumo-<tag>-storage-N` with a veth on the fabric bridge and
an address of its own (10.77.0.201, .202, …), and a private mount namespace in which its own
directory is bind-mounted over /var/lib/kumo/volumes. No libvirtd: a small holder process (sleep)
keeps the mount namespace alive, as a compute host's libvirtd does for its agent.

Its volume agent runs in that mount namespace but in the machine's network namespace (it reaches
the broker on 127.0.0.1, like the compute agents); the qemu-storage-daemon it starts runs in the
host's network namespace (--netns) and serves NBD on the host's fabric address, where the compute
hosts' qemus reach it. The volume files are under the host's directory, <base>/<tag>/storage-N/
volumes, so they go with the tag.

The holder and the daemon live in the host's network namespace, and the mount namespace is
recorded in `mount-namespaces` as a compute host's is: `hosts.down` removes them all with the tag.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from .hosts import BASE, SUBNET, HostError, _alive, _mount_ns, _run, fabric_ns

VOLUMES_DIR = "/var/lib/kumo/volumes"  # inside the host's mount namespace
NBD_PORT = 10809
PREFIX = "storage"
_REPO = Path(__file__).resolve().parent.parent
_INDEX_FILE = "storage-index"  # not `index`: hosts.existing() lists compute hosts only


@dataclass(frozen=True)
class StorageHost:
    tag: str
    name: str
    index: int

    @property
    def ip(self) -> str:
        return f"{SUBNET}.{200 + self.index}"

    @property
    def netns(self) -> str:
        return f"kumo-{self.tag}-{self.name}"

    @property
    def dir(self) -> Path:
        return BASE / self.tag / self.name

    @property
    def volumes_dir(self) -> Path:
        """The volume files, from the machine's own mount namespace."""
        return self.dir / "volumes"

    @property
    def holder_pid_file(self) -> Path:
        return self.dir / "holder.pid"

    def holder_pid(self) -> int | None:
        try:
            pid = int(self.holder_pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _alive(pid) else None


def storage_hosts(tag: str) -> list[StorageHost]:
    """The storage hosts of a tag, from their directories."""
    root = BASE / tag
    found = []
    for path in sorted(root.iterdir()) if root.is_dir() else []:
        index_file = path / _INDEX_FILE
        if index_file.exists():
            found.append(StorageHost(tag, path.name, int(index_file.read_text())))
    return found


def up(tag: str, count: int = 1, timeout: float = 10.0) -> list[StorageHost]:
    """Storage hosts storage-1..count on the tag's fabric (made by hosts.up first)."""
    Path(VOLUMES_DIR).mkdir(parents=True, exist_ok=True)  # the mount point, empty outside hosts
    fab = fabric_ns(tag)
    made = []
    for index in range(1, count + 1):
        host = StorageHost(tag, f"{PREFIX}-{index}", index)
        host.volumes_dir.mkdir(parents=True, exist_ok=True)
        (host.dir / _INDEX_FILE).write_text(str(index))
        _run("ip", "netns", "add", host.netns)
        _run("ip", "-n", fab, "link", "add", f"s{index}", "type", "veth", "peer", "name", "eth0",
             "netns", host.netns)
        _run("ip", "-n", fab, "link", "set", f"s{index}", "master", "fbr0", "up")
        _run("ip", "-n", host.netns, "link", "set", "lo", "up")
        _run("ip", "-n", host.netns, "addr", "add", f"{host.ip}/24", "dev", "eth0")
        _run("ip", "-n", host.netns, "link", "set", "eth0", "up")
        _launch_holder(host)
        made.append(host)
    for host in made:
        _wait_for_holder(host, timeout)
    return made


def _launch_holder(host: StorageHost) -> None:
    script = (f"mount --bind {host.volumes_dir} {VOLUMES_DIR} && "
              f"echo $$ > {host.holder_pid_file} && exec sleep infinity")
    host.holder_pid_file.unlink(missing_ok=True)
    # Not waited for: it holds the mount namespace until the tag is removed (its network
    # namespace's processes are killed then).
    subprocess.Popen(
        ["ip", "netns", "exec", host.netns, "unshare", "--mount", "--propagation", "private",
         "sh", "-c", script],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _wait_for_holder(host: StorageHost, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid = host.holder_pid()
        mount_ns = _mount_ns(pid) if pid is not None else None
        if mount_ns is not None:
            # What hosts.down reads to find the agent in it (the holder never restarts).
            (host.dir / "mount-namespaces").write_text(mount_ns + "\n")
            return
        time.sleep(0.05)
    raise HostError(f"the mount namespace of {host.name} did not come up")


def agent_argv(host: StorageHost, python: str, extra: list[str]) -> list[str]:
    """The command that runs the host's volume agent in its mount namespace (and the machine's
    network namespace, where the broker is); its NBD server listens on the host's address."""
    pid = host.holder_pid()
    if pid is None:
        raise HostError(f"{host.name} is not running (python -m simhosts up N --storage 1)")
    return [
        "nsenter", "-t", str(pid), "-m", f"--wd={_REPO}", "--",
        python, "-m", "compute_agent", "volume", "--host", host.name,
        "--volumes-dir", VOLUMES_DIR, "--backend", "nbd",
        "--export-address", host.ip, "--export-port", str(NBD_PORT), "--netns", host.netns,
        *extra,
    ]


def find(tag: str, name: str) -> StorageHost | None:
    return next((host for host in storage_hosts(tag) if host.name == name), None)


def is_storage(name: str) -> bool:
    return name.startswith(f"{PREFIX}-")


__all__ = ["NBD_PORT", "VOLUMES_DIR", "StorageHost", "agent_argv", "find", "is_storage",
           "storage_hosts", "up"]
