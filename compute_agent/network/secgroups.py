"""Security groups as iptables and ebtables rules, the Neutron "iptables" way: the bridge hands
bridged IPv4 to iptables (br_netfilter), `physdev` tells which tap a packet came from or goes to,
and conntrack makes the rules stateful. Pure functions from ports to restore-file text; the
driver (compute_agent.network.linuxbridge) applies them.

The whole of Kumo's rules is one text per table, applied with `iptables-restore --noflush`: the
chains Kumo owns are declared (which flushes them) and refilled in one commit, so a refresh
never opens a gap, and the chains of ports that went are deleted in the same commit.

Layout (filter table, IPv4):
  FORWARD -> kumo-fwd: for every port with port security, a jump for the traffic to the guest
  (`--physdev-out tap`, chain kumo-i-<port>) and from it (`--physdev-in tap`, kumo-o-<port>);
  then an ACCEPT for every local port's traffic. An allow rule RETURNs, so a packet between two
  guests of one host passes the sender's egress chain and then the receiver's ingress chain.
  kumo-s-<port>: the source addresses (IP with MAC) the guest may send from.
Raw table: kumo-zone gives each network's bridged traffic its own conntrack zone, so overlapping
CIDRs of two networks never share a connection entry.
ebtables (filter table): kumo-fwd jumps to kumo-a-<port> for frames from the guest: only its own
MACs, and ARP only for its own addresses (iptables cannot see ARP). IPv6 is dropped both ways for
ports with port security: the rules here are IPv4 only, so nothing unfiltered gets through.

Fail closed for unnamed container NICs: a veth libvirt's LXC driver named itself (vnetN) is a
container's NIC not yet renamed as its port's tap (compute_agent.network.veth), which no rule of
its port matches yet; everything it sends or is sent is dropped until it is renamed, first thing
in kumo-fwd (iptables: in Kumo's bridges; ebtables: in any bridge, as it cannot tell which).
Kumo never names a device vnetN.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping

from compute_agent import messages as msg

from .base import NetworkError, bridge_name, tap_name

FORWARD_CHAIN = "kumo-fwd"
ZONE_CHAIN = "kumo-zone"
CHAIN_PREFIX = "kumo-"
# The names libvirt gives a NIC it was not given a name for, and Kumo's bridges (base.bridge_name).
UNNAMED_NICS = "vnet+"
KUMO_BRIDGES = "brq+"
_ID_CHARS = 11

_PROTOCOL_NAMES = {"1": "icmp", "6": "tcp", "17": "udp", "132": "sctp"}
_PORTED = frozenset({"tcp", "udp", "sctp", "udplite", "dccp"})
_PROTOCOL = re.compile(r"^[a-z0-9][a-z0-9-]{0,15}$")
_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


def ingress_chain(port_id: str) -> str:
    return f"kumo-i-{port_id[:_ID_CHARS]}"


def egress_chain(port_id: str) -> str:
    return f"kumo-o-{port_id[:_ID_CHARS]}"


def spoof_chain(port_id: str) -> str:
    return f"kumo-s-{port_id[:_ID_CHARS]}"


def arp_chain(port_id: str) -> str:
    return f"kumo-a-{port_id[:_ID_CHARS]}"


def _mac(value: str) -> str:
    mac = value.strip().lower()
    if not _MAC.match(mac):
        raise NetworkError(f"not a MAC address: {value!r}")
    return mac


def _ipv4_net(value: str) -> str | None:
    """The IPv4 network `value` names (an address is a /32); None for an IPv6 one."""
    try:
        net = ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        raise NetworkError(f"not an address or CIDR: {value!r}") from None
    return str(net) if net.version == 4 else None


def _protocol(rule: msg.SecurityRule) -> str:
    proto = (rule.protocol or "").strip().lower()
    if proto in ("", "any", "all"):
        return ""
    proto = _PROTOCOL_NAMES.get(proto, proto)
    if not _PROTOCOL.match(proto):
        raise NetworkError(f"not a protocol: {rule.protocol!r}")
    return proto


def _port_int(value: int | None, what: str, top: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= top:
        raise NetworkError(f"{what} {value!r} is out of range")
    return value


def rule_match(rule: msg.SecurityRule) -> str:
    """The match of one rule without its peer address: protocol and ports (or ICMP type and
    code). Empty for "anything"."""
    proto = _protocol(rule)
    if not proto:
        return ""
    parts = [f"-p {proto}"]
    if proto in _PORTED:
        low = _port_int(rule.port_min, "port", 65535)
        high = _port_int(rule.port_max, "port", 65535)
        if low is not None or high is not None:
            low = low if low is not None else 1
            high = high if high is not None else 65535
            if low > high:
                raise NetworkError(f"port range {low}-{high} is empty")
            ports = str(low) if low == high else f"{low}:{high}"
            parts.append(f"-m {proto} --dport {ports}")
    elif proto == "icmp":
        icmp_type = _port_int(rule.port_min, "ICMP type", 255)
        icmp_code = _port_int(rule.port_max, "ICMP code", 255)
        if icmp_type is not None:
            which = str(icmp_type) if icmp_code is None else f"{icmp_type}/{icmp_code}"
            parts.append(f"-m icmp --icmp-type {which}")
    return " ".join(parts)


def rule_lines(chain: str, rule: msg.SecurityRule) -> list[str]:
    """The iptables lines (restore syntax) that allow what one IPv4 rule allows in `chain`.

    `remote` None allows any peer; a list allows exactly those peers (an empty one: nobody, so
    no line at all). An IPv6 rule, and the IPv6 peers of a rule, give no IPv4 line.
    """
    if rule.ethertype.lower() != "ipv4":
        return []
    match = rule_match(rule)
    peer_flag = "-s" if rule.direction == "ingress" else "-d"
    peers: list[str | None]
    if rule.remote is None:
        peers = [None]
    else:
        peers = [net for net in (_ipv4_net(cidr) for cidr in rule.remote) if net is not None]
    lines = []
    for peer in dict.fromkeys(peers):
        words = [f"-A {chain}"]
        if peer is not None and peer != "0.0.0.0/0":
            words.append(f"{peer_flag} {peer}")
        if match:
            words.append(match)
        words.append("-j RETURN")
        lines.append(" ".join(words))
    return lines


def allowed_sources(port: msg.NetworkInfo) -> list[tuple[str, str]]:
    """(IPv4 CIDR, MAC) pairs the guest may send from: its own, then its allowed address pairs
    (a pair without a MAC uses the port's)."""
    mac = _mac(port.mac_address)
    pairs: list[tuple[str, str]] = []
    if port.ip_address:
        net = _ipv4_net(port.ip_address)
        if net is not None:
            pairs.append((net, mac))
    for pair in port.allowed_address_pairs:
        net = _ipv4_net(pair.get("ip_address", ""))
        if net is not None:
            pairs.append((net, _mac(pair.get("mac_address") or mac)))
    return list(dict.fromkeys(pairs))


def port_chains(port: msg.NetworkInfo) -> dict[str, list[str]]:
    """The filter-table chains of one port with port security, each with its lines."""
    i_chain, o_chain, s_chain = (
        ingress_chain(port.port_id), egress_chain(port.port_id), spoof_chain(port.port_id)
    )
    ingress = [
        f"-A {i_chain} -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN",
        f"-A {i_chain} -m conntrack --ctstate INVALID -j DROP",
    ]
    # The local DHCP server's answers: the guest's DISCOVER came from 0.0.0.0, so the reply is
    # no conntrack reply of it.
    server = f"-s {_ipv4_net(port.dhcp_ip)} " if port.dhcp_ip and _ipv4_net(port.dhcp_ip) else ""
    ingress.append(f"-A {i_chain} {server}-p udp -m udp --sport 67 --dport 68 -j RETURN")
    egress = [
        # A DHCP DISCOVER/REQUEST has no address yet; it may go before the anti-spoofing check.
        (f"-A {o_chain} -s 0.0.0.0/32 -d 255.255.255.255/32 -p udp -m udp --sport 68 "
         "--dport 67 -j RETURN"),
        f"-A {o_chain} -j {s_chain}",
        f"-A {o_chain} -p udp -m udp --sport 68 --dport 67 -j RETURN",
        # No DHCP server in a guest.
        f"-A {o_chain} -p udp -m udp --sport 67 --dport 68 -j DROP",
        f"-A {o_chain} -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN",
        f"-A {o_chain} -m conntrack --ctstate INVALID -j DROP",
    ]
    for rule in port.rules:
        if rule.direction == "ingress":
            ingress.extend(rule_lines(i_chain, rule))
        elif rule.direction == "egress":
            egress.extend(rule_lines(o_chain, rule))
        else:
            raise NetworkError(f"rule direction {rule.direction!r} is neither ingress nor egress")
    ingress.append(f"-A {i_chain} -j DROP")
    egress.append(f"-A {o_chain} -j DROP")
    spoof = [
        f"-A {s_chain} -s {net} -m mac --mac-source {mac} -j RETURN"
        for net, mac in allowed_sources(port)
    ]
    spoof.append(f"-A {s_chain} -j DROP")
    return {i_chain: ingress, o_chain: egress, s_chain: spoof}


def filter_table(ports: Iterable[msg.NetworkInfo], stale_chains: Iterable[str] = ()) -> str:
    """The filter-table restore text for all of this host's ports; `stale_chains` (Kumo chains
    that exist but belong to no port any more) are deleted in the same commit."""
    ports = list(ports)
    declared: dict[str, list[str]] = {FORWARD_CHAIN: []}
    jumps, accepts = [], []
    for port in ports:
        tap = tap_name(port.port_id)
        if port.port_security:
            chains = port_chains(port)
            declared.update(chains)
            jumps.append(f"-A {FORWARD_CHAIN} -m physdev --physdev-out {tap} --physdev-is-bridged "
                         f"-j {ingress_chain(port.port_id)}")
            jumps.append(f"-A {FORWARD_CHAIN} -m physdev --physdev-in {tap} --physdev-is-bridged "
                         f"-j {egress_chain(port.port_id)}")
        accepts.append(f"-A {FORWARD_CHAIN} -m physdev --physdev-out {tap} --physdev-is-bridged "
                       "-j ACCEPT")
        accepts.append(f"-A {FORWARD_CHAIN} -m physdev --physdev-in {tap} --physdev-is-bridged "
                       "-j ACCEPT")
    declared[FORWARD_CHAIN] = unnamed_nic_drops() + jumps + accepts
    return _restore_text(declared, [c for c in stale_chains if c not in declared])


def unnamed_nic_drops() -> list[str]:
    """The filter-table lines that drop what a not yet renamed veth (vnetN) in one of Kumo's
    bridges sends or is sent (`-i`/`-o` of a bridged packet is its bridge)."""
    return [(f"-A {FORWARD_CHAIN} -i {KUMO_BRIDGES} -m physdev --physdev-in {UNNAMED_NICS} "
             "--physdev-is-bridged -j DROP"),
            (f"-A {FORWARD_CHAIN} -o {KUMO_BRIDGES} -m physdev --physdev-out {UNNAMED_NICS} "
             "--physdev-is-bridged -j DROP")]


def raw_table(zones: Mapping[str, int]) -> str:
    """The raw-table text: a conntrack zone per network (`zones`: network id -> zone). A bridged
    packet's input device in PREROUTING is its bridge, whichever port it came in by."""
    lines = [f"-A {ZONE_CHAIN} -i {bridge_name(network_id)} -j CT --zone {zone}"
             for network_id, zone in sorted(zones.items(), key=lambda item: item[1])]
    return _restore_text({ZONE_CHAIN: lines}, [])


def ebtables_table(ports: Iterable[msg.NetworkInfo], stale_chains: Iterable[str] = ()) -> str:
    """The ebtables filter text: MAC and ARP anti-spoofing, IPv6 dropped, for ports with port
    security."""
    # First: every frame of a not yet renamed veth, ARP and IPv6 too, whatever its port allows.
    # In any bridge: ebtables on nf_tables cannot match the bridge (--logical-in is "not
    # supported" without the kernel's nft_meta_bridge), and a Kumo host's bridges are Kumo's.
    declared: dict[str, list[str]] = {FORWARD_CHAIN: [
        f"-A {FORWARD_CHAIN} -i {UNNAMED_NICS} -j DROP",
        f"-A {FORWARD_CHAIN} -o {UNNAMED_NICS} -j DROP",
    ]}
    for port in ports:
        if not port.port_security:
            continue
        tap, chain = tap_name(port.port_id), arp_chain(port.port_id)
        declared[FORWARD_CHAIN].append(f"-A {FORWARD_CHAIN} -i {tap} -j {chain}")
        declared[FORWARD_CHAIN].append(f"-A {FORWARD_CHAIN} -o {tap} -p IPv6 -j DROP")
        sources = allowed_sources(port)
        lines = [f"-A {chain} -p ARP -s {mac} --arp-mac-src {mac} --arp-ip-src {net} -j RETURN"
                 for net, mac in sources]
        lines.append(f"-A {chain} -p ARP -j DROP")
        lines.append(f"-A {chain} -p IPv6 -j DROP")
        macs = dict.fromkeys([_mac(port.mac_address), *(mac for _, mac in sources)])
        lines.extend(f"-A {chain} -s {mac} -j RETURN" for mac in macs)
        lines.append(f"-A {chain} -j DROP")
        declared[chain] = lines
    return _restore_text(declared, [c for c in stale_chains if c not in declared],
                         policy="RETURN")


def _restore_text(declared: Mapping[str, list[str]], stale: Iterable[str], *,
                  policy: str = "-") -> str:
    # Declaring a chain under --noflush empties it (or creates it): the refill is one commit.
    out = [f":{chain} {policy}" for chain in declared]
    for lines in declared.values():
        out.extend(lines)
    for chain in stale:
        out.append(f"-F {chain}")
    for chain in stale:
        out.append(f"-X {chain}")
    return "\n".join(out) + "\n"


def kumo_chains(save_output: str) -> list[str]:
    """The Kumo chains an `iptables-save`/`ebtables-save` listing declares."""
    chains = []
    for line in save_output.splitlines():
        if line.startswith(":" + CHAIN_PREFIX):
            chains.append(line[1:].split()[0])
    return chains
