"""DHCP for a network's local ports: one dnsmasq per (network, host), in a namespace of its own.

dnsmasq hands out fixed leases only (a hosts file: MAC, IP, name) for the ports this host
carries; a port on another host gets its lease from that host's dnsmasq, so no server answers
for a guest it does not know. It listens on a veth into the network's bridge, with the address
and MAC the control plane reserved for it (`NetworkInfo.dhcp_ip`, `dhcp_mac`), inside a network
namespace of its own: two networks with overlapping CIDRs never meet. No DNS (--port=0).

The namespace is anonymous and dnsmasq owns it: dnsmasq is started by `unshare --net` (which
execs it), stays in the foreground in a session of its own, and `--bind-dynamic` lets it serve
the veth that is moved in after it started. The namespace thus exists exactly as long as that
process, and killing it takes the namespace and both ends of the veth away: nothing is left that
a kill does not remove, and no bind mount under /run/netns is made (the agent of a simulated
host runs in a mount namespace of its own, where such a mount would be seen by nobody else).

What the server needs is kept under the state directory, one folder per network: the hosts and
options files (a SIGHUP makes dnsmasq re-read both), its pid file and the argv it runs with; a
changed argv (a new subnet) restarts it. An agent that restarts finds these and adopts the
running server, or removes it when the network has no local port left.

The namespace is also where guests find the metadata service: 169.254.169.254/32 on its loopback,
reached through the route the leases carry (option 121, via the server's address), and the
agent's listener on port 80 in it (metadata_proxy.py). That listener holds the namespace alive, so
it is closed before the server is stopped, and opened again when an agent adopts a server.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from compute_agent import messages as msg

from .base import NetworkError, bridge_name
from .runner import Runner

if TYPE_CHECKING:
    from .metadata_proxy import MetadataProxy

LOG = logging.getLogger(__name__)

LEASE_SECONDS = 3600
METADATA_ROUTE = f"{msg.METADATA_ADDRESS}/32"
_START_TIMEOUT = 5.0
_ID_CHARS = 11
_LABEL = re.compile(r"[^a-z0-9-]+")


def host_leg(network_id: str) -> str:
    """The veth end in the host's namespace, a port of the bridge."""
    return "dhcp" + network_id[:_ID_CHARS]


def server_leg(network_id: str) -> str:
    """The veth end in the DHCP namespace, where dnsmasq listens."""
    return "ns-" + network_id[:_ID_CHARS]


def _ipv4_subnets(subnets: Iterable[msg.SubnetInfo]) -> list[tuple[msg.SubnetInfo,
                                                                   ipaddress.IPv4Network]]:
    out = []
    for subnet in subnets:
        try:
            net = ipaddress.ip_network(subnet.cidr, strict=False)
        except ValueError:
            raise NetworkError(f"subnet {subnet.subnet_id}: bad CIDR {subnet.cidr!r}") from None
        if isinstance(net, ipaddress.IPv4Network) and subnet.enable_dhcp:
            out.append((subnet, net))
    return out


def hostname_label(name: str) -> str:
    """A name dnsmasq accepts (one DNS label), or '' when nothing of `name` is usable."""
    label = _LABEL.sub("-", name.lower()).strip("-")[:63].strip("-")
    return label


def hosts_file(ports: Iterable[msg.NetworkInfo]) -> str:
    """One fixed lease a line: MAC,IP[,hostname]."""
    lines = []
    for port in sorted(ports, key=lambda p: p.port_id):
        if not port.ip_address or not port.mac_address:
            continue
        try:
            address = ipaddress.ip_address(port.ip_address)
        except ValueError:
            raise NetworkError(f"port {port.port_id}: bad address {port.ip_address!r}") from None
        if address.version != 4:
            continue
        fields = [port.mac_address.lower(), str(address)]
        label = hostname_label(port.hostname)
        if label:
            fields.append(label)
        lines.append(",".join(fields))
    return "".join(line + "\n" for line in lines)


def opts_file(subnets: Iterable[msg.SubnetInfo], mtu: int, metadata_via: str = "") -> str:
    """Per subnet (tag sN): router (none without a gateway: dnsmasq would offer itself), DNS
    servers, host routes as option 121 (with the default route in it, since a client that
    gets 121 ignores the router option); and the MTU (option 26) for all.

    `metadata_via` (the server's own address) adds the route to the metadata service,
    169.254.169.254/32 through the DHCP namespace, to the subnet that address is in (guests of
    other subnets cannot reach it on their link). Through the server, not the router: a network
    without a router gets the service too, and each guest asks its own host's proxy."""
    lines = []
    for index, (subnet, net) in enumerate(_ipv4_subnets(subnets)):
        tag = f"tag:s{index}"
        gateway = subnet.gateway_ip
        lines.append(f"{tag},option:router" + (f",{gateway}" if gateway else ""))
        servers = [s for s in subnet.dns_nameservers if _is_ipv4(s)]
        lines.append(f"{tag},option:dns-server" + "".join(f",{s}" for s in servers))
        routes = [(r.get("destination", ""), r.get("nexthop", "")) for r in subnet.host_routes]
        routes = [(d, h) for d, h in routes if d and _is_ipv4(h)]
        if metadata_via and _is_ipv4(metadata_via) and \
                ipaddress.ip_address(metadata_via) in net and \
                not any(d == METADATA_ROUTE for d, _ in routes):
            routes.insert(0, (METADATA_ROUTE, metadata_via))
        if routes:
            if gateway and not any(d in ("0.0.0.0/0", "default") for d, _ in routes):
                routes.append(("0.0.0.0/0", gateway))
            pairs = "".join(f",{d},{h}" for d, h in routes)
            lines.append(f"{tag},option:classless-static-route{pairs}")
    lines.append(f"option:mtu,{int(mtu)}")
    return "".join(line + "\n" for line in lines)


def _is_ipv4(value: str) -> bool:
    try:
        return ipaddress.ip_address(value).version == 4
    except ValueError:
        return False


def server_address(port: msg.NetworkInfo) -> str:
    """dhcp_ip with the prefix of the subnet it is in ("10.0.0.2/24")."""
    address = ipaddress.ip_address(port.dhcp_ip)
    for _, net in _ipv4_subnets(port.subnets):
        if address in net:
            return f"{address}/{net.prefixlen}"
    raise NetworkError(f"network {port.network_id}: the DHCP address {port.dhcp_ip} is in none "
                       "of its DHCP subnets")


def dnsmasq_argv(port: msg.NetworkInfo, folder: Path) -> list[str]:
    """How dnsmasq runs for `port`'s network; files under `folder`."""
    argv = [
        "dnsmasq", "--conf-file=/dev/null", "--no-hosts", "--no-resolv", "--port=0",
        # It stays root: it reads the hosts file again on every SIGHUP, and the state directory
        # (under the instances directory) need not be readable by `nobody`. Its namespace holds
        # nothing but its own veth.
        "--user=root", "--keep-in-foreground", f"--interface={server_leg(port.network_id)}", "--bind-dynamic",
        "--except-interface=lo", "--dhcp-authoritative", "--log-dhcp",
        f"--log-facility={folder / 'dnsmasq.log'}",
        f"--pid-file={folder / 'pid'}",
        f"--dhcp-hostsfile={folder / 'hosts'}",
        f"--dhcp-optsfile={folder / 'opts'}",
        f"--dhcp-leasefile={folder / 'leases'}",
    ]
    for index, (_, net) in enumerate(_ipv4_subnets(port.subnets)):
        argv.append(f"--dhcp-range=set:s{index},{net.network_address},static,{net.netmask},"
                    f"{LEASE_SECONDS}s")
    return argv


def _write(path: Path, text: str) -> bool:
    """Write `text` if it differs; whether it did."""
    try:
        if path.read_text() == text:
            return False
    except FileNotFoundError:
        pass
    partial = path.with_suffix(".partial")
    partial.write_text(text)
    os.chmod(partial, 0o644)
    os.replace(partial, path)
    return True


def _running_pid(folder: Path) -> int | None:
    """The pid of the dnsmasq serving `folder`, if it runs."""
    try:
        pid = int((folder / "pid").read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    if cmdline and os.path.basename(cmdline[0]) == b"dnsmasq" and \
            os.fsencode(f"--pid-file={folder / 'pid'}") in cmdline:
        return pid
    return None


class _InNamespaceOf(Runner):
    """Runs commands in the network namespace of a process (the DHCP server's)."""

    def __init__(self, pid: int) -> None:
        super().__init__()
        self.pid = pid

    def prefix(self) -> list[str]:
        return ["nsenter", f"--net=/proc/{self.pid}/ns/net", "--"]


class DhcpServers:
    """The DHCP servers of one host, their files under `state_dir`/dhcp/<network id>/."""

    def __init__(self, runner: Runner, state_dir: Path,
                 metadata: MetadataProxy | None = None) -> None:
        self.runner = runner
        self.state_dir = state_dir / "dhcp"
        # The metadata listener in each server's namespace (compute_agent.network.metadata_proxy):
        # opened once the server's leg is up, closed before the server stops (it would keep the
        # namespace alive).
        self.metadata = metadata
        self._children: dict[int, subprocess.Popen[bytes]] = {}  # to reap the ones we started

    def folder(self, network_id: str) -> Path:
        return self.state_dir / network_id

    def known(self) -> list[str]:
        """The networks with a server folder (running or not)."""
        if not self.state_dir.is_dir():
            return []
        return sorted(p.name for p in self.state_dir.iterdir() if p.is_dir())

    def pid(self, network_id: str) -> int | None:
        return _running_pid(self.folder(network_id))

    def ensure(self, ports: list[msg.NetworkInfo]) -> None:
        """Serve exactly `ports` (all of one network, the last one's subnets win)."""
        port = ports[-1]
        network_id = port.network_id
        if not port.dhcp_ip or not _ipv4_subnets(port.subnets):
            self.remove(network_id)  # nothing to serve (no DHCP on this network)
            return
        folder = self.folder(network_id)
        folder.mkdir(parents=True, exist_ok=True)
        os.chmod(folder, 0o755)
        changed = _write(folder / "hosts", hosts_file(ports))
        changed = _write(folder / "opts", opts_file(port.subnets, port.mtu, port.dhcp_ip)) \
            or changed
        argv = dnsmasq_argv(port, folder)
        pid = _running_pid(folder)
        same = (folder / "argv").exists() and (folder / "argv").read_text() == "\0".join(argv)
        if pid is not None and not same:
            self._stop_metadata(network_id)
            self._stop(pid)
            pid = None
        if pid is None:
            self._stop_metadata(network_id)  # a listener in a dead server's namespace
            (folder / "argv").write_text("\0".join(argv))
            pid = self._start(argv, folder)
            LOG.info("dnsmasq %d serves network %s", pid, network_id)
        elif changed:
            os.kill(pid, signal.SIGHUP)  # re-reads the hosts and options files
        self._ensure_leg(port, pid)
        if self.metadata is not None:
            self.metadata.serve(network_id, pid)

    def _stop_metadata(self, network_id: str) -> None:
        if self.metadata is not None:
            self.metadata.stop(network_id)

    def _start(self, argv: list[str], folder: Path) -> int:
        (folder / "pid").unlink(missing_ok=True)
        with open(folder / "stderr", "wb") as stderr:
            child = subprocess.Popen(["unshare", "--net", "--", *argv], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=stderr,
                                     start_new_session=True)
        self._children[child.pid] = child
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if child.poll() is not None:
                error = (folder / "stderr").read_text().strip()
                raise NetworkError(f"dnsmasq did not start: {error or child.returncode}")
            if _running_pid(folder) == child.pid:
                return child.pid
            time.sleep(0.05)
        self._stop(child.pid)
        raise NetworkError("dnsmasq did not start in time")

    def _ensure_leg(self, port: msg.NetworkInfo, pid: int) -> None:
        network_id = port.network_id
        inside = _InNamespaceOf(pid)
        leg, server = host_leg(network_id), server_leg(network_id)
        if not inside.run(["ip", "-o", "link", "show", "dev", server], check=False).strip():
            # A host end whose peer is elsewhere (a server that was replaced) goes first.
            self.runner.run(["ip", "link", "del", leg], check=False)
            self.runner.run(["ip", "link", "add", leg, "mtu", str(port.mtu), "type", "veth",
                             "peer", "name", server, "netns", str(pid)])
            inside.run(["ip", "link", "set", "lo", "up"])
        self.runner.run(["ip", "link", "set", leg, "mtu", str(port.mtu), "master",
                         bridge_name(network_id), "up"])
        if port.dhcp_mac:
            inside.run(["ip", "link", "set", server, "address", port.dhcp_mac.lower()])
        inside.run(["ip", "link", "set", server, "mtu", str(port.mtu), "up"])
        address = server_address(port)
        current = inside.run(["ip", "-o", "-4", "addr", "show", "dev", server])
        if f" {address} " not in current:
            inside.run(["ip", "addr", "flush", "dev", server])
            inside.run(["ip", "addr", "add", address, "dev", server])
        # The metadata service's address, on lo: reached through the route DHCP hands out, never
        # by ARP on the link (arp_ignore=1), where every host's DHCP namespace would answer for
        # it and a guest could end up at another host's proxy.
        inside.run(["sysctl", "-q", "-w", f"net.ipv4.conf.{server}.arp_ignore=1"], check=False)
        if f" {METADATA_ROUTE} " not in inside.run(["ip", "-o", "-4", "addr", "show", "dev",
                                                    "lo"]):
            inside.run(["ip", "addr", "add", METADATA_ROUTE, "dev", "lo"])

    def remove(self, network_id: str) -> None:
        """Stop the network's server (its namespace and veth go with it) and remove its files;
        none is no error."""
        folder = self.folder(network_id)
        self._stop_metadata(network_id)
        pid = _running_pid(folder)
        if pid is not None:
            self._stop(pid)
        # Only a half-made leg can be left (its peer never moved in).
        leg = host_leg(network_id)
        if self.runner.run(["ip", "-o", "link", "show", "dev", leg], check=False).strip():
            self.runner.run(["ip", "link", "del", leg], check=False)
        shutil.rmtree(folder, ignore_errors=True)

    def _stop(self, pid: int) -> None:
        _stop(pid)
        child = self._children.pop(pid, None)
        if child is not None:
            child.wait(timeout=5)


def _stop(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    for _ in range(50):
        if not Path(f"/proc/{pid}").exists():
            return
        try:
            # A zombie of ours would linger; dnsmasq daemonised, so it is init's to reap.
            status = Path(f"/proc/{pid}/stat").read_text().split()[2]
        except OSError:
            return
        if status == "Z":
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
