"""Routers on a compute host's data plane: one network namespace per router, with a leg (veth)
into each network's bridge, NAT for the external network, and static routes.

Inside a router's namespace:
  qr-<port11>  a leg per interface, in the tenant network's bridge, with the port's address (the
               subnet's gateway address) and MAC;
  qg-<port11>  the gateway leg, in the external network's bridge, with the gateway port's address
               and each floating IP as a /32 (so the router answers ARP for them);
  a default route via the external subnet's gateway, `spec.routes` as static routes, IPv4
  forwarding on (in this namespace only), and a `nat` table: per floating IP a DNAT
  floating→fixed and an SNAT fixed→floating; traffic from an internal subnet that was DNATed
  (a guest reaching a floating IP from inside) SNATed to the gateway's address so the answer
  comes back through the router; then (when `snat`) each internal subnet SNATed to the
  gateway's address on the way out of qg.
Each new address on qg is announced by a gratuitous ARP, so the external network forgets at once
what it cached for a floating IP (another router's MAC, a failed lookup).
The host end of each leg, in the bridge, is `rtr<port11>` (host_end_name): not `tap…`, which
are guests' NICs with security rules.

Why the namespace is held by a process and not named with `ip netns add`: a named namespace is
a bind mount under /run/netns, and the agent runs in the host's private mount namespace, so the
mount would be visible to the agent alone and would outlive it unseen by whoever cleans up
elsewhere. Here each router's namespace is anonymous, made by a small `unshare --net -- sleep
infinity` process (the holder) the agent starts in a session of its own: the namespace exists
exactly as long as that process, and killing it takes the namespace and every veth in it away
(both ends of a veth go together), so nothing can leak that a `kill` does not remove. The
holder's pid is kept in `state_dir/routers/<router_id>/pid`; an agent that restarts re-adopts
a live holder (checked by its environment, which names the router, so a reused pid is never
taken for it) and routers keep forwarding while the agent is away. The holder stays in the
agent's mount namespace, so a simulated host's teardown (which kills every process in that
namespace) takes its routers too. Commands reach the namespace with
`nsenter --net=/proc/<pid>/ns/net`, run through the host's Runner so that one object decides how
the host is entered (and records everything in unit tests).

NAT uses iptables-legacy-restore of the whole `nat` table, which replaces it atomically on every
sync: the namespace is the router's alone, so nothing else has rules there to keep. Everything
else is converged by reading the namespace (`ip -j`) and changing only what differs, so a sync
repeated, reordered or after a crash ends in the state `spec` describes.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from compute_agent import messages as msg

from .base import NetworkError
from .runner import Runner

LOG = logging.getLogger(__name__)

_ID_CHARS = 11
_MARKER = "KUMO_ROUTER"  # the holder's environment names its router: KUMO_ROUTER=<router_id>
_HOLDER_ARGV = ["unshare", "--net", "--", "sleep", "infinity"]
_START_TIMEOUT = 5.0
_IPTABLES_RESTORE = "iptables-legacy-restore"
_SAFE_ID = re.compile(r"^[0-9A-Za-z-]+$")
_MAC = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")

# One sync or remove at a time per router: two workers converging the same namespace from
# different reads would fight over it.
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock(router_id: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(router_id, threading.Lock())


def interface_name(port_id: str) -> str:
    """The router's end of an interface leg, inside the router's namespace."""
    return "qr-" + port_id[:_ID_CHARS]


def gateway_name(port_id: str) -> str:
    """The router's end of the gateway leg, inside the router's namespace."""
    return "qg-" + port_id[:_ID_CHARS]


def host_end_name(port_id: str) -> str:
    """The host's end of a leg, in the network's bridge."""
    return "rtr" + port_id[:_ID_CHARS]


# --- the holder process: the namespace lives as long as it does -------------------------------

_children: dict[int, subprocess.Popen[bytes]] = {}  # holders this process started, to reap them


def _is_holder(pid: int, router_id: str) -> bool:
    """Whether `pid` is the live holder of `router_id`'s namespace (not a reused pid, not a
    process still in the machine's namespace)."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
        netns = os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:
        return False
    return (f"{_MARKER}={router_id}".encode() in environ and comm == "sleep"
            and netns != os.stat("/proc/self/ns/net").st_ino)


def _start_holder(router_id: str) -> int:
    """Start a holder with a new, empty network namespace; its pid once it is inside it."""
    env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), _MARKER: router_id}
    try:
        proc = subprocess.Popen(_HOLDER_ARGV, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)  # outlives the agent, away from its signals
    except OSError as exc:
        raise NetworkError(f"{' '.join(_HOLDER_ARGV)}: {exc}") from exc
    _children[proc.pid] = proc
    # Until unshare has exec'd sleep the process may still be in our own namespace: nothing may
    # be moved into it before then.
    deadline = time.monotonic() + _START_TIMEOUT
    while not _is_holder(proc.pid, router_id):
        if proc.poll() is not None or time.monotonic() > deadline:
            _stop_holder(proc.pid)
            raise NetworkError(f"router {router_id}: could not make its network namespace "
                               f"({' '.join(_HOLDER_ARGV)} exited {proc.returncode})")
        time.sleep(0.01)
    return proc.pid


def _stop_holder(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)  # its session: the holder and anything it started
    except ProcessLookupError:
        pass
    proc = _children.pop(pid, None)
    if proc is not None:
        proc.wait(timeout=_START_TIMEOUT)
        return
    # Another agent's child (this one restarted): its namespace goes when it exits, which is
    # waited for so that the caller finds it gone.
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        try:
            os.stat(f"/proc/{pid}/ns/net")
        except OSError:
            return
        time.sleep(0.01)


def _folder(state_dir: Path, router_id: str) -> Path:
    if not _SAFE_ID.match(router_id):  # it names a folder that remove() deletes
        raise NetworkError(f"bad router id {router_id!r}")
    return state_dir / "routers" / router_id


def _pid_file(state_dir: Path, router_id: str) -> Path:
    return _folder(state_dir, router_id) / "pid"


def _holder(state_dir: Path, router_id: str) -> int | None:
    """The live holder of the router's namespace, or None."""
    try:
        pid = int(_pid_file(state_dir, router_id).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _is_holder(pid, router_id) else None


class _Namespace:
    """Commands inside one router's namespace, entered from the host's."""

    def __init__(self, runner: Runner, pid: int) -> None:
        self.runner = runner
        self.pid = pid

    def run(self, argv: list[str], *, check: bool = True, input: str | None = None) -> str:
        return self.runner.run(["nsenter", f"--net=/proc/{self.pid}/ns/net", "--", *argv],
                               check=check, input=input)

    def json(self, argv: list[str]) -> list[dict]:
        out = self.run(["ip", "-j", *argv])
        return json.loads(out) if out.strip() else []


# --- what the spec asks for ------------------------------------------------------------------

def _check(spec: msg.RouterSpec) -> None:
    """Refuse, before anything changes, a spec that names what a router here cannot have: the
    names and addresses go into commands and into the NAT table's text."""
    _folder(Path(), spec.router_id)
    try:
        for leg in [*spec.interfaces, *([spec.gateway] if spec.gateway else [])]:
            if not _SAFE_ID.match(leg.port_id[:_ID_CHARS]) or not _MAC.match(leg.mac_address):
                raise NetworkError(f"router leg {leg.port_id!r}: bad port id or MAC address")
            if leg.ip_address:
                _cidr_of(leg)
        for fip in spec.floating_ips:
            ipaddress.IPv4Address(fip.floating_ip)
            ipaddress.IPv4Address(fip.fixed_ip)
        for route in spec.routes:
            ipaddress.IPv4Network(route["destination"], strict=False)
            ipaddress.IPv4Address(route["nexthop"])
    except (ValueError, KeyError) as exc:
        raise NetworkError(f"router {spec.router_id}: {exc!r}") from exc


def _cidr_of(leg: msg.NetworkInfo) -> tuple[ipaddress.IPv4Interface, msg.SubnetInfo]:
    """The leg's address with its subnet's prefix length, and that subnet (IPv4 only: a
    router leg's address is its subnet's gateway, and routers here forward IPv4)."""
    address = ipaddress.IPv4Address(leg.ip_address)
    for subnet in leg.subnets:
        network = ipaddress.ip_network(subnet.cidr, strict=False)
        if network.version == 4 and address in network:
            return ipaddress.IPv4Interface(f"{address}/{network.prefixlen}"), subnet
    raise NetworkError(f"router leg {leg.port_id}: no subnet holds its address {leg.ip_address}")


def _legs(spec: msg.RouterSpec) -> dict[str, msg.NetworkInfo]:
    legs = {interface_name(leg.port_id): leg for leg in spec.interfaces if leg.ip_address}
    if spec.gateway is not None and spec.gateway.ip_address:
        legs[gateway_name(spec.gateway.port_id)] = spec.gateway
    return legs


def _addresses(spec: msg.RouterSpec) -> dict[str, set[str]]:
    """Each leg's wanted IPv4 addresses, as address/prefix."""
    wanted = {name: {str(_cidr_of(leg)[0])} for name, leg in _legs(spec).items()}
    if spec.gateway is not None and spec.gateway.ip_address:
        wanted[gateway_name(spec.gateway.port_id)] |= {f"{fip.floating_ip}/32"
                                                      for fip in spec.floating_ips}
    return wanted


def _routes(spec: msg.RouterSpec) -> dict[str, str]:
    """destination → nexthop: the default route out of the gateway, then the static routes."""
    routes: dict[str, str] = {}
    if spec.gateway is not None and spec.gateway.ip_address:
        gateway_ip = _cidr_of(spec.gateway)[1].gateway_ip
        if gateway_ip:
            routes["default"] = gateway_ip
    for route in spec.routes:
        destination = str(ipaddress.ip_network(route["destination"], strict=False))
        routes["default" if destination == "0.0.0.0/0" else destination] = route["nexthop"]
    return routes


def nat_rules(spec: msg.RouterSpec) -> str:
    """The router's whole `nat` table, in iptables-restore's format."""
    lines = ["*nat", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
             ":POSTROUTING ACCEPT [0:0]"]
    if spec.gateway is not None and spec.gateway.ip_address:
        qg = gateway_name(spec.gateway.port_id)
        gateway_address = _cidr_of(spec.gateway)[0].ip
        for fip in spec.floating_ips:
            # From any leg, so that other internal networks reach a guest by its floating IP too.
            lines.append(f"-A PREROUTING -d {fip.floating_ip}/32 -j DNAT "
                         f"--to-destination {fip.fixed_ip}")
            lines.append(f"-A OUTPUT -d {fip.floating_ip}/32 -j DNAT "
                         f"--to-destination {fip.fixed_ip}")
        for fip in spec.floating_ips:
            # Before the subnets' SNAT: a guest with a floating IP goes out as that address.
            lines.append(f"-A POSTROUTING -s {fip.fixed_ip}/32 -o {qg} -j SNAT "
                         f"--to-source {fip.floating_ip}")
        internal = [_cidr_of(leg)[0].network for leg in spec.interfaces if leg.ip_address]
        if spec.floating_ips:
            # A guest reaching a floating IP from inside (its own, or a neighbour's on its
            # subnet) is answered through the router only if it appears to come from outside.
            for network in internal:
                lines.append(f"-A POSTROUTING -s {network} -m conntrack --ctstate DNAT -j SNAT "
                             f"--to-source {gateway_address}")
        if spec.snat:
            for network in internal:
                lines.append(f"-A POSTROUTING -s {network} -o {qg} -j SNAT "
                             f"--to-source {gateway_address}")
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


# --- converging ------------------------------------------------------------------------------

def sync(runner: Runner, spec: msg.RouterSpec, ensure_bridge: Callable[[msg.NetworkInfo], str],
         state_dir: Path) -> None:
    """Make the router `spec.router_id` on this host match `spec`: legs added or removed,
    addresses, floating IPs, SNAT and routes. Idempotent; converges from any earlier state."""
    _check(spec)
    with _lock(spec.router_id):
        legs = _legs(spec)
        wanted_addresses = _addresses(spec)
        wanted_routes = _routes(spec)
        pid = _holder(state_dir, spec.router_id)
        if pid is None:
            pid = _start_holder(spec.router_id)
            try:
                _pid_file(state_dir, spec.router_id).parent.mkdir(parents=True, exist_ok=True)
                _pid_file(state_dir, spec.router_id).write_text(f"{pid}\n")
            except OSError as exc:  # a holder nobody could find again would leak
                _stop_holder(pid)
                raise NetworkError(f"router {spec.router_id}: {exc}") from exc
            LOG.info("router %s: new namespace held by pid %d", spec.router_id, pid)
        ns = _Namespace(runner, pid)
        ns.run(["ip", "link", "set", "lo", "up"])
        # /proc/sys/net shows the namespace of whoever opens it (sh, not sysctl(8): procps is
        # not on every host).
        ns.run(["sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"])

        present = {link["ifname"] for link in ns.json(["link", "show"])}
        for name in sorted(present - set(legs)):
            if name.startswith(("qr-", "qg-")):
                ns.run(["ip", "link", "del", name])  # its host end goes with it
        for name, leg in legs.items():
            _ensure_leg(runner, ns, name, leg, ensure_bridge(leg), create=name not in present)

        have_addresses = {link["ifname"]: {f"{a['local']}/{a['prefixlen']}"
                                           for a in link.get("addr_info", [])
                                           if a.get("family") == "inet"}
                          for link in ns.json(["-4", "addr", "show"])}
        removed_fips: list[str] = []
        for name in legs:
            have = have_addresses.get(name, set())
            for address in sorted(have - wanted_addresses[name]):
                ns.run(["ip", "addr", "del", address, "dev", name])
                if name.startswith("qg-") and address.endswith("/32"):
                    removed_fips.append(address.split("/")[0])
            for address in sorted(wanted_addresses[name] - have):
                ns.run(["ip", "addr", "add", address, "dev", name])
                if name.startswith("qg-"):
                    _announce(ns, name, address.split("/")[0])

        _sync_routes(ns, wanted_routes)
        ns.run([_IPTABLES_RESTORE, "-w"], input=nat_rules(spec))
        # A connection already NATed through a removed floating IP keeps its conntrack entry;
        # drop those where conntrack(8) is installed (best effort: it is not everywhere).
        for fip in removed_fips:
            for direction in ("--orig-dst", "--reply-dst"):
                ns.run(["conntrack", "-D", direction, fip], check=False)


# A gratuitous ARP (a request for the address from itself): the external network's machines
# replace what they cached for it (another router's MAC, or a failed lookup) now, not minutes
# later. Python's raw socket rather than arping(8), which hosts often lack.
_GARP = r"""
import socket, sys
dev, ip = sys.argv[1], socket.inet_aton(sys.argv[2])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((dev, 0))
mac = s.getsockname()[4]
s.send(b"\xff" * 6 + mac + b"\x08\x06\x00\x01\x08\x00\x06\x04\x00\x01"
       + mac + ip + b"\x00" * 6 + ip)
"""


def _announce(ns: _Namespace, device: str, address: str) -> None:
    ns.run([sys.executable, "-c", _GARP, device, address], check=False)


def _ensure_leg(runner: Runner, ns: _Namespace, name: str, leg: msg.NetworkInfo, bridge: str,
                *, create: bool) -> None:
    host_end = host_end_name(leg.port_id)
    mtu = str(leg.mtu)
    if create:
        # A host end left by a namespace that died (its veths are destroyed asynchronously).
        runner.run(["ip", "link", "del", host_end], check=False)
        runner.run(["ip", "link", "add", host_end, "mtu", mtu, "type", "veth",
                    "peer", "name", name, "netns", str(ns.pid)])
    runner.run(["ip", "link", "set", host_end, "master", bridge, "mtu", mtu, "up"])
    ns.run(["ip", "link", "set", name, "address", leg.mac_address, "mtu", mtu, "up"])


def _destination(dst: str) -> str:
    """A destination as `_routes` spells it (ip(8) shows a host route without its /32)."""
    return dst if dst == "default" else str(ipaddress.ip_network(dst, strict=False))


def _sync_routes(ns: _Namespace, wanted: dict[str, str]) -> None:
    have = {_destination(route["dst"]): route.get("gateway", "")
            for route in ns.json(["-4", "route", "show", "proto", "static"])}
    for destination in sorted(set(have) - set(wanted)):
        ns.run(["ip", "route", "del", destination, "proto", "static"])
    failed = []
    for destination, nexthop in wanted.items():
        if have.get(destination) == nexthop:
            continue
        try:
            ns.run(["ip", "route", "replace", destination, "via", nexthop, "proto", "static"])
        except NetworkError as exc:  # a nexthop on no leg: the others still apply
            failed.append(str(exc))
    if failed:
        raise NetworkError("; ".join(failed))


def remove(runner: Runner, router_id: str, state_dir: Path) -> None:
    """Remove the router and everything it made; an unknown router is no error."""
    with _lock(router_id):
        pid = _holder(state_dir, router_id)
        if pid is not None:
            ns = _Namespace(runner, pid)
            try:
                # The legs first, so that their host ends are gone when this returns (a dying
                # namespace's devices are destroyed asynchronously).
                for link in ns.json(["link", "show"]):
                    if link["ifname"].startswith(("qr-", "qg-")):
                        ns.run(["ip", "link", "del", link["ifname"]], check=False)
            except NetworkError as exc:  # the host's namespace is gone, say: the holder still goes
                LOG.warning("router %s: its legs could not be listed: %s", router_id, exc)
            _stop_holder(pid)
            LOG.info("router %s: removed (pid %d)", router_id, pid)
        shutil.rmtree(_folder(state_dir, router_id), ignore_errors=True)


def known(state_dir: Path) -> list[str]:
    """The routers this host runs (a live holder each): what an agent that restarts may check
    against the routers the control plane still gives this host."""
    folder = state_dir / "routers"
    if not folder.is_dir():
        return []
    return sorted(entry.name for entry in folder.iterdir()
                  if _SAFE_ID.match(entry.name) and _holder(state_dir, entry.name) is not None)


def remove_all(runner: Runner, state_dir: Path) -> None:
    """Remove every router this host runs (the host leaves for good)."""
    folder = state_dir / "routers"
    if folder.is_dir():
        for entry in sorted(folder.iterdir()):
            remove(runner, entry.name, state_dir)
