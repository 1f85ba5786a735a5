"""What the hosts' data planes are told (the receiver of cloud.network.dataplane's announcements): a port as a host must plug it, a router as the host that
runs it must build it, and who must hear of a change.

The agents keep no copy of the database. Every message carries the whole wanted state of what it
names (a port's rules with remote groups already expanded to addresses, a router's legs and
floating IPs), so a host converges on the latest message whatever came before, and a lost or
repeated one is harmless. Messages go through cloud.rpc, so they leave only when the change that
caused them commits.

Which host carries a port: an instance's port lives where the instance is; a DHCP port on the
host it was made for (binding_host); a router's ports on the router's host.
"""

from __future__ import annotations

import ipaddress
import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable

from django.db import transaction
from django.db.models import Count, F, Q

from cloud import rpc
from cloud.network import dataplane, ipam
from cloud.network.models import (
    FloatingIp,
    Network,
    Port,
    Router,
    SecurityGroup,
    SecurityGroupRule,
    Subnet,
)
from compute_agent import messages as msg

from .hosts import service_is_up
from .models import COMPUTE_BINARY, ComputeNode, Instance, Service

LOG = logging.getLogger(__name__)

LINUXBRIDGE = "linuxbridge"
DHCP_OWNER = "network:dhcp"
ROUTER_INTERFACE_OWNER = "network:router_interface"
ROUTER_GATEWAY_OWNER = "network:router_gateway"
FLOATINGIP_OWNER = "network:floatingip"
COMPUTE_OWNER_PREFIX = "compute:"


def has_dataplane(host: str) -> bool:
    return ComputeNode.objects.filter(host=host, network_driver=LINUXBRIDGE).exists()


def _peers(host: str) -> list[str]:
    """The tunnel addresses of every other host with a data plane (a VXLAN network's flood list).
    Down hosts stay listed: their guests may come back, and a flood to a dead host costs nothing."""
    return sorted(
        ComputeNode.objects.filter(network_driver=LINUXBRIDGE).exclude(host=host)
        .values_list("host_ip", flat=True).distinct()
    )


def _subnets(network: Network) -> list[msg.SubnetInfo]:
    return [
        msg.SubnetInfo(
            subnet_id=str(s.id), cidr=s.cidr, gateway_ip=s.gateway_ip or "",
            enable_dhcp=s.enable_dhcp, dns_nameservers=list(s.dns_nameservers or []),
            host_routes=list(s.host_routes or []),
        )
        for s in Subnet.objects.filter(network=network).order_by("created_at", "id")
    ]


def _addresses(port: Port) -> list[str]:
    return [ip["ip_address"] for ip in port.fixed_ips or [] if ip.get("ip_address")]


def _members(group_id: uuid.UUID, ethertype: str) -> list[str]:
    """The addresses of every port in the group, as host CIDRs of the rule's IP version."""
    version = 6 if ethertype == "IPv6" else 4
    found: set[str] = set()
    for port in Port.objects.filter(security_groups=group_id):
        candidates = _addresses(port) + [
            pair["ip_address"] for pair in port.allowed_address_pairs or []
            if pair.get("ip_address")
        ]
        for address in candidates:
            try:
                net = ipaddress.ip_network(address, strict=False)
            except ValueError:
                continue
            if net.version == version:
                found.add(str(net))
    return sorted(found)


def _rule(rule: SecurityGroupRule) -> msg.SecurityRule:
    remote: list[str] | None = None
    if rule.remote_ip_prefix:
        remote = [rule.remote_ip_prefix]
    elif rule.remote_group_id:
        remote = _members(rule.remote_group_id, rule.ethertype)
    return msg.SecurityRule(
        direction=rule.direction, ethertype=rule.ethertype,
        protocol=str(rule.protocol or ""), port_min=rule.port_range_min,
        port_max=rule.port_range_max, remote=remote,
    )


def _rules(port: Port) -> list[msg.SecurityRule]:
    rules = SecurityGroupRule.objects.filter(security_group__in=port.security_groups.all())
    return [_rule(r) for r in rules.order_by("created_at", "id")]


def _dhcp_leg(network: Network, host: str) -> tuple[str, str]:
    if not any(s.enable_dhcp for s in Subnet.objects.filter(network=network, ip_version=4)):
        return "", ""
    port = ensure_dhcp_port(network, host)
    addresses = _addresses(port)
    return (addresses[0] if addresses else ""), port.mac_address


def ensure_dhcp_port(network: Network, host: str) -> Port:
    """The port of the network's DHCP server on `host` (one per host carrying the network, as
    Neutron has one per DHCP agent): made on first need, with an address from IPAM."""
    device_id = f"dhcp-{host}"
    found = Port.objects.filter(network=network, device_owner=DHCP_OWNER,
                                device_id=device_id).first()
    if found is not None:
        return found
    with transaction.atomic():
        port = ipam.allocate_port(network, str(network.project_id) if network.project_id else None,
                                  device_id, name=f"dhcp {host}", device_owner=DHCP_OWNER)
        Port.objects.filter(pk=port.pk).update(binding_host=host, status="ACTIVE")
        port.refresh_from_db()
    return port


def port_info(port: Port, host: str, *, hostname: str = "") -> msg.NetworkInfo:
    """`port` as `host` must plug it. A host without a data plane is told "user" (qemu's
    user-mode NIC) and needs nothing else."""
    network = port.network
    addresses = _addresses(port)
    info = msg.NetworkInfo(
        network_id=str(network.id), network_name=network.name, port_id=str(port.id),
        mac_address=port.mac_address, ip_address=addresses[0] if addresses else "",
        hostname=hostname, revision=port.revision,
    )
    if not host or not has_dataplane(host):
        return info
    info.network_type = network.network_type
    info.segmentation_id = network.segmentation_id
    info.physical_network = network.physical_network or ""
    info.mtu = network.mtu
    info.subnets = _subnets(network)
    info.port_security = port.port_security_enabled
    info.allowed_address_pairs = list(port.allowed_address_pairs or [])
    info.rules = _rules(port) if port.port_security_enabled else []
    info.peers = _peers(host)
    if port.device_owner.startswith(COMPUTE_OWNER_PREFIX) or not port.device_owner:
        info.dhcp_ip, info.dhcp_mac = _dhcp_leg(network, host)
    return info


# --- who carries a port, and telling them


def _carrier(port: Port) -> tuple[str, str]:
    """The host that carries the port, and the hostname DHCP hands its guest (one query)."""
    if port.device_owner in (ROUTER_INTERFACE_OWNER, ROUTER_GATEWAY_OWNER):
        return Router.objects.filter(pk=_uuid(port.device_id)).values_list(
            "host", flat=True).first() or "", ""
    if port.device_owner == DHCP_OWNER:
        return port.binding_host, ""
    instance = Instance.objects.filter(uuid=_uuid(port.device_id), deleted=False).only(
        "host", "hostname").first()
    return (instance.host or "", instance.hostname or "") if instance is not None else ("", "")


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def _carriers(ports: list[Port]) -> dict[uuid.UUID, tuple[str, str]]:
    """_carrier of each port, the guests' ports (the many: every member of a security group a
    boot joins) read in one query rather than one each."""
    found: dict[uuid.UUID, tuple[str, str]] = {}
    guests: dict[uuid.UUID, Port] = {}
    for port in ports:
        device = _uuid(port.device_id)
        if port.device_owner in (ROUTER_INTERFACE_OWNER, ROUTER_GATEWAY_OWNER, DHCP_OWNER):
            found[port.pk] = _carrier(port)
        elif device is None:
            found[port.pk] = ("", "")
        else:
            guests[port.pk] = port
    devices = {_uuid(p.device_id) for p in guests.values()}
    live = {instance: (host or "", hostname or "") for instance, host, hostname in
            Instance.objects.filter(uuid__in=devices, deleted=False).values_list(
                "uuid", "host", "hostname")} if devices else {}
    for port_id, port in guests.items():
        found[port_id] = live.get(_uuid(port.device_id), ("", ""))
    return found


def notify_ports(port_ids: Iterable[str]) -> None:
    """Tell each host carrying one of these ports its current state (rules, addresses)."""
    by_host: dict[str, list[msg.NetworkInfo]] = defaultdict(list)
    ids = sorted({p for p in map(_uuid, port_ids) if p})
    if not ids:
        return
    # A new revision, taken with the rows' locks (in id order, so two changes cannot deadlock):
    # the state read below is at least as new as that of any lower revision. One locking read
    # and one UPDATE, however many ports (a boot into a security group touches all its members).
    with transaction.atomic():
        list(Port.objects.select_for_update(no_key=True).filter(pk__in=ids).order_by("pk")
             .values_list("pk", flat=True))
        Port.objects.filter(pk__in=ids).update(revision=F("revision") + 1)
    ports = list(Port.objects.filter(pk__in=ids).select_related("network"))
    carriers = _carriers(ports)
    hosts = {host for host, _ in carriers.values() if host}
    planes = set(ComputeNode.objects.filter(host__in=hosts, network_driver=LINUXBRIDGE)
                 .values_list("host", flat=True)) if hosts else set()
    for port in ports:
        host, hostname = carriers[port.pk]
        if host in planes:
            by_host[host].append(port_info(port, host, hostname=hostname))
    for host, infos in by_host.items():
        rpc.to_host(host, msg.TASK_REFRESH_PORTS,
                    msg.PortsRefresh(request_id=_request_id(), ports=infos))
    routers = {p.device_id for p in ports if p.device_owner == ROUTER_INTERFACE_OWNER}
    for router_id in routers:
        notify_router(router_id)


def notify_groups(group_ids: Iterable[str]) -> None:
    """The rules of these groups changed, or who belongs to them did: every port in them, and
    every port in a group whose rules name one of them as remote group, gets its rules again."""
    ids = [g for g in map(_uuid, group_ids) if g]
    if not ids:
        return
    referring = SecurityGroupRule.objects.filter(remote_group__in=ids).values_list(
        "security_group_id", flat=True)
    groups = set(ids) | set(referring)
    port_ids = Port.objects.filter(security_groups__in=groups).values_list("id", flat=True)
    notify_ports([str(p) for p in set(port_ids)])


def notify_port_removed(port_id: str, host: str) -> None:
    if host and has_dataplane(host):
        rpc.to_host(host, msg.TASK_REFRESH_PORTS,
                    msg.PortsRefresh(request_id=_request_id(), removed=[str(port_id)]))


def host_joined(host: str) -> None:
    """A host with a data plane registered (or its tunnel address changed): every other host
    hears of it through a refresh of its ports, which carries the new flood list."""
    others = ComputeNode.objects.filter(network_driver=LINUXBRIDGE).exclude(host=host)
    for node in others:
        on_host = Instance.objects.filter(host=node.host, deleted=False).values_list("uuid",
                                                                                     flat=True)
        ports = Port.objects.filter(
            Q(device_id__in=[str(u) for u in on_host]) | Q(binding_host=node.host))
        notify_ports([str(p) for p in ports.values_list("id", flat=True)])
    # Routers too: those already placed hear of the new tunnel end, and those made while no host
    # had a data plane (bootstrap's router1 before the first agent reported) get one now.
    for router in Router.objects.all():
        notify_router(str(router.id))


def _request_id() -> str:
    return f"req-{uuid.uuid4()}"


# --- routers


def choose_router_host() -> str:
    """The host with a data plane and a live service that runs the fewest routers."""
    alive = [s.host for s in Service.objects.filter(binary=COMPUTE_BINARY) if service_is_up(s)]
    nodes = ComputeNode.objects.filter(network_driver=LINUXBRIDGE)
    if alive:
        nodes = nodes.filter(host__in=alive) or nodes
    counts = dict(Router.objects.exclude(host="").values("host").annotate(n=Count("id"))
                  .values_list("host", "n"))
    hosts = sorted(nodes.values_list("host", flat=True), key=lambda h: (counts.get(h, 0), h))
    return hosts[0] if hosts else ""


def router_spec(router: Router) -> msg.RouterSpec:
    host = router.host
    interfaces = Port.objects.filter(device_owner=ROUTER_INTERFACE_OWNER,
                                     device_id=str(router.id)).select_related("network")
    gateway = Port.objects.filter(device_owner=ROUTER_GATEWAY_OWNER,
                                  device_id=str(router.id)).select_related("network").first()
    floating = FloatingIp.objects.filter(router=router, port__isnull=False).exclude(
        fixed_ip_address__isnull=True)
    return msg.RouterSpec(
        request_id=_request_id(), router_id=str(router.id), revision=router.revision,
        gateway=_leg(gateway, host) if gateway is not None else None,
        interfaces=[_leg(p, host) for p in interfaces],
        snat=router.enable_snat,
        floating_ips=[msg.FloatingMapping(floating_ip=f.floating_ip_address,
                                          fixed_ip=f.fixed_ip_address or "")
                      for f in floating] if gateway is not None else [],
        routes=list(router.routes or []),
    )


def _leg(port: Port, host: str) -> msg.NetworkInfo:
    info = port_info(port, host)
    info.rules, info.port_security = [], False  # a router's legs are not filtered
    return info


def notify_router(router_id: str) -> None:
    """Tell the router's host (chosen now if it has none) what the router is now."""
    if not Router.objects.filter(pk=_uuid(router_id)).update(revision=F("revision") + 1):
        return
    router = Router.objects.get(pk=_uuid(router_id))
    if not router.host or not has_dataplane(router.host):
        host = choose_router_host()
        if not host:
            LOG.info("router %s has no host with a data plane to run on yet", router_id)
            return
        Router.objects.filter(pk=router.pk).update(host=host)
        Port.objects.filter(device_id=str(router.pk)).update(binding_host=host)
        router.host = host
    rpc.to_host(router.host, msg.TASK_SYNC_ROUTER, router_spec(router))


def notify_router_removed(router_id: str, host: str, *,
                          revision: int = msg.REMOVED_REVISION) -> None:
    """Tell `host` to remove the router: deleted (REMOVED_REVISION: it never comes back there), or
    moved away at `revision` (a later spec, newer, may bring it back)."""
    if host and has_dataplane(host):
        rpc.to_host(host, msg.TASK_REMOVE_ROUTER,
                    msg.RouterSpec(request_id=_request_id(), router_id=str(router_id),
                                   revision=revision))


def move_routers_off(host: str) -> list[str]:
    """A dead host's routers are placed on live hosts (its own are gone with it): each is told to
    the host choose_router_host picks. Returns the routers moved."""
    moved = [str(r) for r in Router.objects.filter(host=host).values_list("id", flat=True)]
    Router.objects.filter(host=host).update(host="")
    for router_id in moved:
        notify_router(router_id)
    return moved


def forget_routers_elsewhere(host: str) -> None:
    """A host that returns after its failure may still hold routers that were moved away: it is
    told to remove every router it does not carry now."""
    for router_id, revision in Router.objects.exclude(host=host).values_list("id", "revision"):
        notify_router_removed(str(router_id), host, revision=revision)


def groups_of(port: Port) -> list[str]:
    return [str(g) for g in SecurityGroup.objects.filter(ports=port).values_list("id", flat=True)]


def connect() -> None:
    """Hear the network domain's announcements (compute's AppConfig.ready calls this)."""
    dataplane.PORTS_CHANGED.connect(
        lambda sender, port_ids, **_: notify_ports(port_ids), dispatch_uid="np-ports", weak=False)
    dataplane.GROUPS_CHANGED.connect(
        lambda sender, group_ids, **_: notify_groups(group_ids), dispatch_uid="np-groups",
        weak=False)
    dataplane.ROUTER_CHANGED.connect(
        lambda sender, router_id, **_: notify_router(router_id), dispatch_uid="np-router",
        weak=False)
    dataplane.ROUTER_REMOVED.connect(
        lambda sender, router_id, host, **_: notify_router_removed(router_id, host),
        dispatch_uid="np-router-removed", weak=False)
    dataplane.PORT_REMOVED.connect(
        lambda sender, port_id, host, **_: notify_port_removed(port_id, host),
        dispatch_uid="np-port-removed", weak=False)
