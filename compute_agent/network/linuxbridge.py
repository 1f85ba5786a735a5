"""The Linux bridge data plane: per network a bridge, joined to the other hosts' by VXLAN (or
to a physical interface for a flat network); per network a dnsmasq for the local ports
(compute_agent.network.dhcp); stateful security groups in iptables with br_netfilter
(compute_agent.network.secgroups); routers by compute_agent.network.router.

Everything runs in the host's network namespace (`--netns`, through Runner). A driver that
would change the machine's own namespace refuses to start unless the operator opted in
(`--network-driver-allow-host-netns`): on a shared test machine a mistake there takes the
machine off the network.

The driver keeps what it made under `state_dir` (the local ports, each network's kind and
conntrack zone, the DHCP servers), so an agent killed and restarted adopts its devices,
rules and servers (and removes those of ports that went meanwhile) instead of leaking them.
Every change recomputes the whole of the host's rules from the local ports and applies them in
one commit per table; the methods are serialised by one lock.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import Any

from compute_agent import messages as msg

from . import dhcp, secgroups, veth
from .base import NetworkDriver, NetworkError, Nic, bridge_name, tap_name, vxlan_name
from .metadata_proxy import MetadataProxy
from .runner import Runner

try:  # compute_agent.network.router (routers) is written beside this module
    from . import router as _router
except ImportError:  # pragma: no cover - until it lands
    _router = None  # type: ignore[assignment]

LOG = logging.getLogger(__name__)

VXLAN_PORT = 4789
ANY_MAC = "00:00:00:00:00:00"
DATA_PLANE_TYPES = frozenset({"vxlan", "flat"})
IPTABLES = "iptables-legacy"
IPTABLES_RESTORE = "iptables-legacy-restore"
IPTABLES_SAVE = "iptables-legacy-save"


def in_machine_netns() -> bool:
    """Whether this process runs in the machine's own network namespace (init's)."""
    try:
        return os.readlink("/proc/self/ns/net") == os.readlink("/proc/1/ns/net")
    except OSError:
        return True  # cannot tell: assume the worst


def parse_mappings(values: Iterable[str]) -> dict[str, str]:
    """`physnet:iface` strings as a mapping; a malformed one is a NetworkError."""
    mappings = {}
    for value in values:
        physnet, _, iface = value.partition(":")
        if not physnet or not iface or len(iface) > 15 or "/" in iface:
            raise NetworkError(f"--physical-interface-mapping {value!r}: use PHYSNET:INTERFACE")
        mappings[physnet] = iface
    return mappings


def _filtering(port: msg.NetworkInfo) -> tuple[object, ...]:
    """What a port's rules are made of: when it changes, the port's connections are re-checked."""
    return (port.port_security, port.rules, port.allowed_address_pairs, port.ip_address,
            port.mac_address)


class LinuxBridgeDriver(NetworkDriver):
    name = "linuxbridge"

    def __init__(
        self,
        *,
        state_dir: Path,
        netns: str = "",
        tunnel_ip: str = "",
        physical_interfaces: Mapping[str, str] | None = None,
        allow_host_netns: bool = False,
        runner: Runner | None = None,
        metadata: MetadataProxy | None = None,
    ) -> None:
        if not netns and in_machine_netns() and not allow_host_netns:
            raise NetworkError(
                "the linuxbridge network driver would change this machine's own network "
                "namespace: give the host's --netns, or --network-driver-allow-host-netns on a "
                "real host"
            )
        if netns and not Path(f"/run/netns/{netns}").exists():
            raise NetworkError(f"--netns {netns}: no such network namespace")
        self.runner = runner or Runner(netns)
        self.tunnel_ip = tunnel_ip
        self.physical_interfaces = dict(physical_interfaces or {})
        self.state_dir = Path(state_dir)
        # The metadata service listens in each DHCP namespace (metadata_proxy.py); start() below
        # opens the listeners again for the servers an earlier run left.
        self.dhcp = dhcp.DhcpServers(self.runner, self.state_dir, metadata)
        self._lock = threading.RLock()
        self.ports: dict[str, msg.NetworkInfo] = {}
        self.owners: dict[str, str] = {}  # port id -> instance uuid
        self.networks: dict[str, dict[str, Any]] = {}  # id -> type, vni, interface, zone
        # The highest revision applied per router (RouterSpec.revision; a removed router keeps
        # REMOVED_REVISION, so a spec sent before its removal cannot bring it back).
        self.router_revisions: dict[str, int] = {}
        self._load()

    # --- state on disk

    def _load(self) -> None:
        path = self.state_dir / "state.json"
        if not path.exists():
            return
        data = json.loads(path.read_text())
        self.ports = {pid: msg.NetworkInfo.from_dict(p) for pid, p in data["ports"].items()}
        self.networks = dict(data["networks"])
        self.owners = dict(data.get("owners", {}))
        self.router_revisions = {k: int(v) for k, v in data.get("routers", {}).items()}

    def _save(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        path = self.state_dir / "state.json"
        partial = path.with_suffix(".partial")
        partial.write_text(json.dumps({
            "ports": {pid: p.to_dict() for pid, p in self.ports.items()},
            "networks": self.networks,
            "owners": self.owners,
            "routers": self.router_revisions,
        }, indent=1, sort_keys=True))
        os.replace(partial, path)

    def start(self) -> None:
        """Adopt what an earlier run of the agent left: re-apply the rules and servers of the
        ports it knew, remove DHCP servers of networks without a local port."""
        with self._lock:
            for network_id in self._local_networks():
                try:
                    self._ensure_network(self._ports_of(network_id)[-1])
                except NetworkError:
                    # One network that cannot be set up (a mapping gone) must not keep the
                    # agent, and every other network, from starting; its next plug says why.
                    LOG.exception("network %s could not be set up again", network_id)
            self._sync_all()

    # --- the interface

    def nic(self, port: msg.NetworkInfo) -> Nic:
        if port.network_type not in DATA_PLANE_TYPES:
            return Nic(kind="user", mac_address=port.mac_address)
        return Nic(kind="bridge", mac_address=port.mac_address,
                   bridge=bridge_name(port.network_id), tap=tap_name(port.port_id), mtu=port.mtu)

    def plug(self, instance_uuid: str, ports: list[msg.NetworkInfo]) -> None:
        wanted = [p for p in ports if p.network_type in DATA_PLANE_TYPES]
        if not wanted:
            return
        with self._lock:
            for port in wanted:
                known = self.ports.get(port.port_id)
                if known is not None and known.revision > port.revision:
                    port = known  # a refresh already brought newer rules than this request's
                self._ensure_network(port)
                self.ports[port.port_id] = port
                self.owners[port.port_id] = instance_uuid
            self._save()
            self._sync_all(networks={p.network_id for p in wanted})

    def unplug(self, instance_uuid: str, port_ids: Collection[str] | None = None) -> None:
        with self._lock:
            mine = self.port_ids(instance_uuid)
            self._forget([p for p in mine if port_ids is None or p in port_ids])

    def port_ids(self, instance_uuid: str) -> list[str]:
        with self._lock:
            return sorted(p for p, owner in self.owners.items()
                          if owner == instance_uuid and p in self.ports)

    def refresh(self, request: msg.PortsRefresh) -> None:
        with self._lock:
            touched, narrowed = set(), []
            for port in request.ports:
                known = self.ports.get(port.port_id)
                if known is None or port.network_type not in DATA_PLANE_TYPES:
                    continue
                if port.revision < known.revision:
                    continue  # handled out of order: a newer state is already applied
                # Its network too: a host that joined or left changes the VXLAN flood list.
                self._ensure_network(port)
                self.ports[port.port_id] = port
                touched.update({port.network_id, known.network_id})
                if _filtering(port) != _filtering(known):
                    narrowed.append(port.port_id)
            self._save()
            if touched:
                self._sync_all(networks=touched, flush_ports=narrowed)
        if request.removed:
            self._forget(list(request.removed))

    def sync_router(self, spec: msg.RouterSpec) -> None:
        router = self._router_module()
        with self._lock:
            if spec.revision < self.router_revisions.get(spec.router_id, 0):
                LOG.info("router %s: revision %d is older than the one applied; ignored",
                         spec.router_id, spec.revision)
                return
            router.sync(self.runner, spec, self.ensure_bridge, self.state_dir)
            self.router_revisions[spec.router_id] = spec.revision
            self._save()

    def remove_router(self, router_id: str, revision: int = msg.REMOVED_REVISION) -> None:
        router = self._router_module()
        with self._lock:
            # Not older, nor equal: a removal read at the very revision this host was given the
            # router with was read while the router was being placed here.
            if revision <= self.router_revisions.get(router_id, 0):
                LOG.info("router %s: removal at revision %d is not newer than the one applied; "
                         "ignored", router_id, revision)
                return
            router.remove(self.runner, router_id, self.state_dir)
            self.router_revisions[router_id] = revision
            self._save()
            self._collect_networks()

    def name_device(self, current: str, wanted: str, bridge: str) -> bool:
        with self._lock:
            return veth.adopt(self.runner, current, wanted, bridge)

    def cleanup(self) -> None:
        with self._lock:
            if _router is not None:
                _router.remove_all(self.runner, self.state_dir)
            self.ports.clear()
            self.owners.clear()
            self._sync_all()
            for network_id in list(self.networks):
                self._remove_network(network_id, force=True)
            for network_id in self.dhcp.known():
                self.dhcp.remove(network_id)
            self._remove_hooks()
            self.networks.clear()
            self._save()

    @staticmethod
    def _router_module() -> Any:
        if _router is None:
            raise NetworkError("this agent has no router support (compute_agent.network.router)")
        return _router

    # --- networks

    def ensure_bridge(self, port: msg.NetworkInfo) -> str:
        """Make `port`'s network bridge (with its VXLAN or physical member) exist here; its
        name. Used for the guests' ports and by routers for their legs."""
        with self._lock:
            self._ensure_network(port)
            self._save()
            return bridge_name(port.network_id)

    def _ensure_network(self, port: msg.NetworkInfo) -> None:
        network_id = port.network_id
        bridge = bridge_name(network_id)
        info = self.networks.get(network_id) or {"zone": self._free_zone()}
        info["type"] = port.network_type
        if not self._exists(bridge):
            self.runner.run(["ip", "link", "add", bridge, "type", "bridge"])
            # No router solicitations or addresses of its own on a bare L2 bridge.
            self.runner.run(["ip", "link", "set", bridge, "addrgenmode", "none"], check=False)
        self.runner.run(["ip", "link", "set", bridge, "mtu", str(port.mtu), "up"])
        if port.network_type == "vxlan":
            if port.segmentation_id is None:
                raise NetworkError(f"network {network_id}: a vxlan network needs a segment id")
            info["vni"] = port.segmentation_id
            self._ensure_vxlan(port, bridge)
        elif port.network_type == "flat":
            iface = self.physical_interfaces.get(port.physical_network)
            if iface is None:
                raise NetworkError(f"network {network_id}: no interface for physical network "
                                   f"{port.physical_network!r} on this host "
                                   "(--physical-interface-mapping)")
            if not self._exists(iface):
                raise NetworkError(f"interface {iface} of {port.physical_network} is missing")
            info["interface"] = iface
            self.runner.run(["ip", "link", "set", iface, "master", bridge, "up"])
        else:
            raise NetworkError(f"network type {port.network_type!r} has no data plane here")
        self.networks[network_id] = info

    def _ensure_vxlan(self, port: msg.NetworkInfo, bridge: str) -> None:
        assert port.segmentation_id is not None
        device = vxlan_name(port.segmentation_id)
        if not self._exists(device):
            if not self.tunnel_ip:
                raise NetworkError("a vxlan network needs this host's --tunnel-ip")
            self.runner.run(["ip", "link", "add", device, "type", "vxlan", "id",
                             str(port.segmentation_id), "local", self.tunnel_ip,
                             "dstport", str(VXLAN_PORT), "nolearning"])
        self.runner.run(["ip", "link", "set", device, "mtu", str(port.mtu), "master", bridge,
                         "up"])
        wanted = {peer for peer in port.peers if peer and peer != self.tunnel_ip}
        have = set()
        for line in self.runner.run(["bridge", "fdb", "show", "dev", device]).splitlines():
            words = line.split()
            if words and words[0] == ANY_MAC and "dst" in words:
                have.add(words[words.index("dst") + 1])
        # Broadcasts and unknown unicast go to every peer (no learning): what a guest that
        # moved to another host needs to stay reachable without any FDB update.
        for peer in sorted(wanted - have):
            self.runner.run(["bridge", "fdb", "append", ANY_MAC, "dev", device, "dst", peer])
        for peer in sorted(have - wanted):
            self.runner.run(["bridge", "fdb", "del", ANY_MAC, "dev", device, "dst", peer],
                            check=False)

    def _free_zone(self) -> int:
        used = {info.get("zone") for info in self.networks.values()}
        zone = 1
        while zone in used:
            zone += 1
        return zone

    def _exists(self, device: str) -> bool:
        return bool(self.runner.run(["ip", "-o", "link", "show", "dev", device],
                                    check=False).strip())

    def _bridge_members(self, bridge: str) -> list[str]:
        out = self.runner.run(["ip", "-o", "link", "show", "master", bridge], check=False)
        return [line.split(":")[1].strip().split("@")[0] for line in out.splitlines()
                if line.count(":") >= 2]

    def _remove_network(self, network_id: str, *, force: bool = False) -> None:
        """Remove the network's bridge and tunnel, unless something not ours (a router's leg, a
        guest's tap) is still in the bridge; `force` removes it anyway (cleanup)."""
        info = self.networks.get(network_id, {})
        bridge = bridge_name(network_id)
        ours = {dhcp.host_leg(network_id), info.get("interface")}
        if "vni" in info:
            ours.add(vxlan_name(int(info["vni"])))
        others = [m for m in self._bridge_members(bridge) if m not in ours]
        if others and not force:
            LOG.info("bridge %s stays: %s still in it", bridge, ", ".join(others))
            return
        self.dhcp.remove(network_id)
        if info.get("interface"):
            self.runner.run(["ip", "link", "set", info["interface"], "nomaster"], check=False)
        if "vni" in info:
            self.runner.run(["ip", "link", "del", vxlan_name(int(info["vni"]))], check=False)
        self.runner.run(["ip", "link", "del", bridge], check=False)
        self.networks.pop(network_id, None)

    def _collect_networks(self) -> None:
        """Remove the networks no local port needs any more."""
        local = self._local_networks()
        for network_id in list(self.networks):
            if network_id not in local:
                self._remove_network(network_id)
        self._save()

    # --- ports

    def _local_networks(self) -> set[str]:
        return {p.network_id for p in self.ports.values()}

    def _ports_of(self, network_id: str) -> list[msg.NetworkInfo]:
        return [p for p in self.ports.values() if p.network_id == network_id]

    def _forget(self, port_ids: list[str]) -> None:
        with self._lock:
            gone = [self.ports.pop(pid) for pid in port_ids if pid in self.ports]
            for port in gone:
                self.owners.pop(port.port_id, None)
            if not gone:
                return
            self._save()
            self._sync_all(networks={p.network_id for p in gone}, flush_ports=[],
                           flush_addresses=[p.ip_address for p in gone if p.ip_address])
            for port in gone:
                # libvirt removes the tap with the domain; one left behind would keep a dead
                # guest's port in the bridge.
                if self._exists(tap_name(port.port_id)):
                    self.runner.run(["ip", "link", "del", tap_name(port.port_id)], check=False)
            self._collect_networks()

    def _sync_all(
        self,
        *,
        networks: Iterable[str] = (),
        flush_ports: Iterable[str] = (),
        flush_addresses: Iterable[str] = (),
    ) -> None:
        """Make the rules match the local ports, then the DHCP servers of `networks`; drop the
        conntrack entries of `flush_ports` (their rules may have narrowed)."""
        ports = sorted(self.ports.values(), key=lambda p: p.port_id)
        self._apply_rules(ports)
        for port_id in flush_ports:
            port = self.ports.get(port_id)
            if port is not None and port.ip_address:
                self._flush_conntrack(port.network_id, port.ip_address)
        for address in flush_addresses:
            self._flush_conntrack("", address)
        local = self._local_networks()
        for network_id in set(networks) | set(self.dhcp.known()):
            if network_id in local:
                self.dhcp.ensure(self._ports_of(network_id))
            else:
                self.dhcp.remove(network_id)

    # --- rules

    def _ensure_hooks(self) -> None:
        """The chains Kumo jumps to from the built-in ones, made once."""
        try:
            # Without it bridged packets never reach iptables: no security group would hold.
            self.runner.run(["sysctl", "-q", "-w", "net.bridge.bridge-nf-call-iptables=1"],
                            check=False)
        except NetworkError:
            LOG.warning("could not set net.bridge.bridge-nf-call-iptables", exc_info=True)
        for table, builtin, chain in (("filter", "FORWARD", secgroups.FORWARD_CHAIN),
                                      ("raw", "PREROUTING", secgroups.ZONE_CHAIN)):
            self.runner.run([IPTABLES, "-w", "-t", table, "-N", chain], check=False)
            if not self._iptables_has(table, builtin, chain):
                self.runner.run([IPTABLES, "-w", "-t", table, "-I", builtin, "1", "-j", chain])
        self.runner.run(["ebtables", "-N", secgroups.FORWARD_CHAIN, "-P", "RETURN"], check=False)
        out = self.runner.run(["ebtables", "-L", "FORWARD"], check=False)
        if f"-j {secgroups.FORWARD_CHAIN}" not in out:
            self.runner.run(["ebtables", "-I", "FORWARD", "1", "-j", secgroups.FORWARD_CHAIN])

    def _iptables_has(self, table: str, builtin: str, chain: str) -> bool:
        out = self.runner.run([IPTABLES_SAVE, "-t", table], check=False)
        return f"-A {builtin} -j {chain}" in out.splitlines()

    def _apply_rules(self, ports: list[msg.NetworkInfo]) -> None:
        self._ensure_hooks()
        filter_save = self.runner.run([IPTABLES_SAVE, "-t", "filter"])
        stale = secgroups.kumo_chains(filter_save)
        zones = {nid: int(info["zone"]) for nid, info in self.networks.items()
                 if nid in self._local_networks()}
        text = ("*raw\n" + secgroups.raw_table(zones) + "COMMIT\n"
                "*filter\n" + secgroups.filter_table(ports, stale) + "COMMIT\n")
        self.runner.run([IPTABLES_RESTORE, "-w", "--noflush"], input=text)
        eb_stale = secgroups.kumo_chains(self.runner.run(["ebtables-save"], check=False))
        eb_text = "*filter\n" + secgroups.ebtables_table(ports, eb_stale) + "COMMIT\n"
        self.runner.run(["ebtables-restore", "--noflush"], input=eb_text)

    def _flush_conntrack(self, network_id: str, address: str) -> None:
        """Forget the connections of a guest address, so that a narrowed rule holds at once
        for a flow it no longer allows (a flow still allowed is picked up again as new)."""
        zone = self.networks.get(network_id, {}).get("zone")
        zone_args = ["-w", str(zone)] if zone is not None else []
        try:
            for flag in ("--orig-src", "--orig-dst"):
                self.runner.run(["conntrack", "-D", *zone_args, flag, address], check=False)
        except NetworkError:
            # No conntrack tool: the new rules hold for new connections only.
            LOG.warning("could not drop the connections of %s", address, exc_info=True)

    def _remove_hooks(self) -> None:
        for table, builtin, chain in (("filter", "FORWARD", secgroups.FORWARD_CHAIN),
                                      ("raw", "PREROUTING", secgroups.ZONE_CHAIN)):
            while self._iptables_has(table, builtin, chain):
                self.runner.run([IPTABLES, "-w", "-t", table, "-D", builtin, "-j", chain])
            self.runner.run([IPTABLES, "-w", "-t", table, "-F", chain], check=False)
            self.runner.run([IPTABLES, "-w", "-t", table, "-X", chain], check=False)
        self.runner.run(["ebtables", "-D", "FORWARD", "-j", secgroups.FORWARD_CHAIN],
                        check=False)
        self.runner.run(["ebtables", "-F", secgroups.FORWARD_CHAIN], check=False)
        self.runner.run(["ebtables", "-X", secgroups.FORWARD_CHAIN], check=False)
