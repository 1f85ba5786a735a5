"""Making, finding and removing the simulated hosts of one tag (see the package docstring)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

BASE = Path(os.environ.get("KUMO_SIMHOSTS_DIR", "/tmp/kumo-hosts"))
_REPO = Path(__file__).resolve().parent.parent
SUBNET = "10.77.0"
# The "outside world" of the simulated hosts: a namespace on the external network's segment (a
# bridge in the fabric namespace that every host's `ext0` joins), holding the gateway address of
# the external network `public` that bootstrap makes. Floating IPs are reached from it.
EXTERNAL_GATEWAY = "172.24.4.1/24"
EXTERNAL_INTERFACE = "ext0"  # in each host: the physical interface of physical network "public"
PHYSICAL_NETWORK = "public"
# Inside each host's mount namespace: the same path on every host, its own directory underneath.
INSTANCES_DIR = "/var/lib/kumo/instances"
_LIBVIRT_PATHS = {
    "etc": "/etc/libvirt",
    "run": "/run/libvirt",
    "lib": "/var/lib/libvirt",
    "log": "/var/log/libvirt",
    "cache": "/var/cache/libvirt",
    "instances": INSTANCES_DIR,
}


# Container hosts (`up --lxc N`): lxc-1..N, numbered on after the qemu hosts for their addresses.
CONTAINER_PREFIX = "lxc"


class HostError(RuntimeError):
    pass


@dataclass(frozen=True)
class SimHost:
    tag: str
    name: str
    index: int

    @property
    def ip(self) -> str:
        return f"{SUBNET}.{10 + self.index}"

    @property
    def netns(self) -> str:
        return f"kumo-{self.tag}-{self.name}"

    @property
    def dir(self) -> Path:
        return BASE / self.tag / self.name

    @property
    def socket(self) -> Path:
        return self.dir / "run" / "libvirt-sock"

    @property
    def is_container_host(self) -> bool:
        """A host named lxc-N runs containers (libvirt's LXC driver), not qemu guests."""
        return self.name.startswith(f"{CONTAINER_PREFIX}-")

    @property
    def uri(self) -> str:
        """The host's libvirt, from any mount namespace on the machine."""
        driver = "lxc" if self.is_container_host else "qemu"
        return f"{driver}:///system?socket={self.socket}"

    @property
    def peer_uri(self) -> str:
        """The host's libvirt for a migration: the URI another host's libvirtd opens for the
        peer-to-peer copy, and another host's agent opens to send a cold migration's disk.

        The agents run in the machine's network namespace, which has no leg on the fabric, so
        qemu+tcp://<fabric address> would reach the libvirtds but not the agents; the unix socket
        is the same path from every namespace. qemu+unix (not qemu:///system?socket=, which a
        libvirtd opens in-process as itself) makes the source's libvirtd use the remote driver.
        The guests' memory and disk still travel over the fabric: each libvirtd tells the other
        its migration_host address.
        """
        return f"qemu+unix:///system?socket={self.socket}"

    @property
    def tcp_uri(self) -> str:
        """The host's libvirt over the fabric, from another host's network namespace only."""
        return f"qemu+tcp://{self.ip}/system"

    @property
    def vnc_dir(self) -> Path:
        """Where its guests' VNC sockets are: the same path from every namespace."""
        return self.dir / "vnc"

    @property
    def pid_file(self) -> Path:
        return self.dir / "run" / "libvirtd.pid"

    def libvirtd_pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _alive(pid) else None


def fabric_ns(tag: str) -> str:
    return f"kumo-{tag}-fab"


def outside_ns(tag: str) -> str:
    """The outside world's namespace: `kumo-ext` for `make run`'s hosts (tag run), as the README
    says, and one per tag otherwise so that a test stack never meets a running one."""
    return "kumo-ext" if tag == "run" else f"kumo-{tag}-ext"


def hosts_of(tag: str, count: int, prefix: str = "compute") -> list[SimHost]:
    return [SimHost(tag, f"{prefix}-{i}", i) for i in range(1, count + 1)]


def existing(tag: str) -> list[SimHost]:
    """The hosts of a tag, from their directories (running or not)."""
    root = BASE / tag
    found = []
    for path in sorted(root.iterdir()) if root.is_dir() else []:
        index_file = path / "index"
        if index_file.exists():
            found.append(SimHost(tag, path.name, int(index_file.read_text())))
    return found


def up(tag: str, count: int, prefix: str = "compute", *, lxc: int = 0) -> list[SimHost]:
    """Hosts `prefix`-1..count of the tag, and container hosts lxc-1..`lxc`, each with its
    libvirtd answering; whatever the tag left behind before (a crash) is removed first. The same
    libvirtd serves both kinds (its mount namespace has the cgroup v1 controllers LXC needs); a
    container host's agent opens it as lxc://."""
    down(tag)
    Path(INSTANCES_DIR).mkdir(parents=True, exist_ok=True)  # the mount point, empty outside hosts
    fab = fabric_ns(tag)
    _run("ip", "netns", "add", fab)
    _run("ip", "-n", fab, "link", "set", "lo", "up")
    _run("ip", "-n", fab, "link", "add", "fbr0", "type", "bridge")
    _run("ip", "-n", fab, "link", "set", "fbr0", "up")
    _make_outside(tag)
    hosts = hosts_of(tag, count, prefix) + [
        SimHost(tag, f"{CONTAINER_PREFIX}-{i}", count + i) for i in range(1, lxc + 1)]
    for host in hosts:
        _make_dirs(host)
        _run("ip", "netns", "add", host.netns)
        _run("ip", "-n", fab, "link", "add", f"h{host.index}", "type", "veth", "peer", "name",
             "eth0", "netns", host.netns)
        _run("ip", "-n", fab, "link", "set", f"h{host.index}", "master", "fbr0", "up")
        _run("ip", "-n", host.netns, "link", "set", "lo", "up")
        _run("ip", "-n", host.netns, "addr", "add", f"{host.ip}/24", "dev", "eth0")
        _run("ip", "-n", host.netns, "link", "set", "eth0", "up")
        # The external network's wire: no address here, the host's data plane bridges it.
        _run("ip", "-n", fab, "link", "add", f"x{host.index}", "type", "veth", "peer", "name",
             EXTERNAL_INTERFACE, "netns", host.netns)
        _run("ip", "-n", fab, "link", "set", f"x{host.index}", "master", "extbr", "up")
        _run("ip", "-n", host.netns, "link", "set", EXTERNAL_INTERFACE, "up")
        _launch_libvirtd(host)
    # Launched together, awaited together: each daemon's start-up (qemu capability probes) takes
    # seconds, and they need not wait for one another.
    for host in hosts:
        _wait_for_libvirtd(host)
    return hosts


def _make_outside(tag: str) -> None:
    fab, outside = fabric_ns(tag), outside_ns(tag)
    _run("ip", "-n", fab, "link", "add", "extbr", "type", "bridge")
    _run("ip", "-n", fab, "link", "set", "extbr", "up")
    _run("ip", "netns", "add", outside)
    _run("ip", "-n", outside, "link", "set", "lo", "up")
    _run("ip", "-n", fab, "link", "add", "xout", "type", "veth", "peer", "name", "eth0",
         "netns", outside)
    _run("ip", "-n", fab, "link", "set", "xout", "master", "extbr", "up")
    _run("ip", "-n", outside, "addr", "add", EXTERNAL_GATEWAY, "dev", "eth0")
    _run("ip", "-n", outside, "link", "set", "eth0", "up")


def start_libvirtd(host: SimHost, timeout: float = 60) -> None:
    """(Re)start the host's libvirtd in a fresh private mount and UTS namespace inside its network
    namespace, and wait until it answers."""
    _launch_libvirtd(host)
    _wait_for_libvirtd(host, timeout)


def _launch_libvirtd(host: SimHost) -> None:
    binds = "; ".join(f"mount --bind {host.dir / sub} {target}"
                      for sub, target in _LIBVIRT_PATHS.items())
    script = (
        # Its own hostname (a UTS namespace of its own), so libvirt names each hypervisor apart.
        f"hostname {host.name}; "
        f"{binds}; "
        # `ip netns exec` remounted /sys, hiding the cgroup mounts; LXC guests need them back.
        "mount -t tmpfs -o mode=755 tmpfs /sys/fs/cgroup; "
        "for c in cpu cpuacct cpuset memory devices freezer blkio pids; do "
        "mkdir -p /sys/fs/cgroup/$c; mount -t cgroup -o $c cgroup /sys/fs/cgroup/$c; done; "
        "mkdir -p /sys/fs/cgroup/systemd; mount -t cgroup -o none,name=systemd cgroup "
        "/sys/fs/cgroup/systemd; "
        "exec /usr/sbin/libvirtd --listen -d --pid-file /run/libvirt/libvirtd.pid"
    )
    host.pid_file.unlink(missing_ok=True)
    _run("ip", "netns", "exec", host.netns, "unshare", "--mount", "--uts",
         "--propagation", "private", "sh", "-c", script)


def _wait_for_libvirtd(host: SimHost, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid = host.libvirtd_pid()
        if pid and host.socket.exists() and _answers(host):
            _remember_mount_ns(host, pid)
            return
        time.sleep(0.1)
    raise HostError(f"libvirtd of {host.name} did not come up; see {host.dir}/log/libvirtd.log")


def stop_libvirtd(host: SimHost, *, guests: bool = True) -> None:
    """Kill the host's libvirtd, and with `guests` its qemu processes too (a dead machine)."""
    if guests:
        for pid_file in (host.dir / "run" / "qemu").glob("*.pid"):
            with contextlib.suppress(OSError, ValueError):
                os.kill(int(pid_file.read_text().strip()), signal.SIGKILL)
    pid = host.libvirtd_pid()
    if pid:
        os.kill(pid, signal.SIGTERM)
        for _ in range(50):
            if not _alive(pid):
                break
            time.sleep(0.1)
        else:
            os.kill(pid, signal.SIGKILL)


def down(tag: str) -> None:
    """Remove everything the tag made: guests, daemons, namespaces and directories."""
    for host in existing(tag):
        pid = host.libvirtd_pid()
        if pid:
            _remember_mount_ns(host, pid)
        stop_libvirtd(host)
        # What the host's agent started in the host's mount namespace lives on in namespaces of
        # its own (a network's DHCP server, a router): it goes with the host. Every mount
        # namespace the host had counts: a libvirtd restarted gets a new one, while the agent
        # (and what it started) stays in the one it entered.
        current = _mount_ns(pid) if pid else None
        for mount_ns in _mount_namespaces(host):
            # An earlier namespace's id may since have been given to someone else's: there,
            # only what is recognisably the agent's is killed.
            _kill_mount_ns(mount_ns, only_ours=mount_ns != current)
    # A storage host (storage.py) keeps the same record: its volume agent goes with it (its holder
    # and qemu-storage-daemon are in its network namespace, removed below).
    for record in (BASE / tag).glob("*/mount-namespaces"):
        if not (record.parent / "index").exists():
            for mount_ns in record.read_text().split():
                _kill_mount_ns(mount_ns, only_ours=True)
    for ns in _netns_list():
        if ns.startswith(f"kumo-{tag}-") or ns == outside_ns(tag):
            _netns_pids_kill(ns)
            subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)
    shutil.rmtree(BASE / tag, ignore_errors=True)
    with contextlib.suppress(OSError):
        BASE.rmdir()  # only when no other tag is left


def agent_argv(host: SimHost, python: str, extra: list[str]) -> list[str]:
    """The command that runs the host's compute agent in its mount namespace (and the machine's
    network namespace, where the broker and the API are)."""
    pid = host.libvirtd_pid()
    if pid is None:
        raise HostError(f"{host.name} is not running (python -m simhosts up)")
    # Entering a mount namespace moves the working directory to its root: --wd puts it back where
    # `python -m compute_agent` finds the package (next to this one).
    return [
        "nsenter", "-t", str(pid), "-m", f"--wd={_REPO}", "--",
        python, "-m", "compute_agent", "--host", host.name, "--libvirt-uri", host.uri,
        "--instances-dir", INSTANCES_DIR, "--host-ip", host.ip,
        "--vnc-socket-dir", str(host.vnc_dir), "--migration-uri", host.peer_uri,
        # Tenant networks: bridges, VXLAN, DHCP, security groups and routers in the host's
        # network namespace; the external network on its ext0.
        "--network-driver", "linuxbridge", "--netns", host.netns,
        "--physical-interface-mapping", f"{PHYSICAL_NETWORK}:{EXTERNAL_INTERFACE}",
        *extra,
    ]


# --- helpers


def _make_dirs(host: SimHost) -> None:
    for sub in (*_LIBVIRT_PATHS, "vnc"):
        (host.dir / sub).mkdir(parents=True, exist_ok=True)
    (host.dir / "index").write_text(str(host.index))
    etc = host.dir / "etc"
    for sub in ("qemu/networks", "storage", "secrets"):
        (etc / sub).mkdir(parents=True, exist_ok=True)
    nwfilter = Path("/etc/libvirt/nwfilter")
    if nwfilter.is_dir():  # the standard filters: definitions, no domains
        shutil.copytree(nwfilter, etc / "nwfilter", dirs_exist_ok=True)
    host_uuid = f"00000000-0000-4000-8000-{host.index:012x}"
    (etc / "libvirtd.conf").write_text(
        "listen_tls = 0\nlisten_tcp = 1\n"
        f'listen_addr = "{host.ip}"\nauth_tcp = "none"\nauth_unix_rw = "none"\n'
        f'host_uuid = "{host_uuid}"\n'
        'log_outputs = "3:file:/var/log/libvirt/libvirtd.log"\n'
    )
    # Guests of a simulated host run as root (their files are the host's own directories), log
    # to files (no virtlogd per host) and stay out of the cgroup tree the machine's libvirtd uses.
    (etc / "qemu.conf").write_text(
        'user = "root"\ngroup = "root"\ndynamic_ownership = 0\nsecurity_driver = "none"\n'
        'stdio_handler = "file"\ncgroup_controllers = [ ]\n'
        f'migration_host = "{host.ip}"\n'
    )
    for name in ("libvirt.conf", "lxc.conf"):
        (etc / name).write_text("")


def _answers(host: SimHost) -> bool:
    try:
        result = subprocess.run(["virsh", "-c", host.uri, "version"], capture_output=True,
                                timeout=10, check=False)
    except subprocess.TimeoutExpired:
        return False  # a daemon still starting on a busy machine: asked again until the deadline
    return result.returncode == 0


def _netns_list() -> list[str]:
    result = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    return [line.split()[0] for line in result.stdout.splitlines() if line.strip()]


def _netns_pids_kill(ns: str) -> None:
    """Whatever still runs in the namespace (a guest whose pid file was lost) is killed with it."""
    for pid in _netns_pids(ns):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def _netns_pids(ns: str) -> list[int]:
    result = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True,
                            check=False)
    return [int(pid) for pid in result.stdout.split() if pid.isdigit()]


def _remember_mount_ns(host: SimHost, pid: int) -> None:
    mount_ns = _mount_ns(pid)
    if mount_ns and mount_ns not in _mount_namespaces(host):
        with (host.dir / "mount-namespaces").open("a") as f:
            f.write(mount_ns + "\n")


def _mount_namespaces(host: SimHost) -> list[str]:
    try:
        return (host.dir / "mount-namespaces").read_text().split()
    except OSError:
        return []


def _mount_ns(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:
        return None


def _kill_mount_ns(mount_ns: str, *, only_ours: bool = False) -> None:
    for pid in _mount_ns_pids(mount_ns, only_ours=only_ours):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def _mount_ns_pids(mount_ns: str, *, only_ours: bool = False) -> list[int]:
    if mount_ns == _mount_ns(os.getpid()) or mount_ns == _mount_ns(1):
        return []  # never the machine's own
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or _mount_ns(int(entry.name)) != mount_ns:
            continue
        if only_ours and not _agents_own(int(entry.name)):
            continue
        found.append(int(entry.name))
    return found


def _agents_own(pid: int) -> bool:
    """The agent itself, a DHCP server or a router's namespace holder it started."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False
    return b"compute_agent" in cmdline or b"dnsmasq" in cmdline or b"KUMO_ROUTER=" in environ


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    with contextlib.suppress(OSError):
        if "(zombie)" in Path(f"/proc/{pid}/status").read_text() or \
                "\nState:\tZ" in Path(f"/proc/{pid}/status").read_text():
            return False
    return True


def _run(*argv: str) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise HostError(f"{' '.join(argv)}: {result.stderr.strip()}")
