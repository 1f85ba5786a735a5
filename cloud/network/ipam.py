"""Addresses for ports: the next free IPv4 address of a network's subnet, and a unique MAC.

No two live ports of a network may hold the same address. Allocation locks the Network row
(SELECT … FOR UPDATE) for the length of its transaction, so concurrent boots onto one network
take turns: each sees the ports the previous one committed. SQLite has no row locks, but Kumo opens
its SQLite transactions with BEGIN IMMEDIATE, which serialises writers the same way. Every code
path that gives a port an address must come through allocate_port for this to hold.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Iterator

from django.db import IntegrityError, transaction

from cloud import errors

from .models import Network, Port, Subnet

MAC_PREFIX = "fa:16:3e"
DEFAULT_DEVICE_OWNER = "compute:nova"
_MAC_ATTEMPTS = 16

IPv4 = ipaddress.IPv4Address


class NoSubnet(errors.BadRequest):
    """The network has no IPv4 subnet to take an address from."""


class InvalidAddress(errors.BadRequest):
    """The requested fixed IP is not a usable host address of the network's subnets."""

    neutron_type = "InvalidIpForNetwork"


class AddressInUse(errors.Conflict):
    """The requested fixed IP is held by another port."""

    neutron_type = "IpAddressAlreadyAllocated"


class NoFreeAddress(errors.Conflict):
    """Every address of the subnet's allocation pools is taken."""

    neutron_type = "IpAddressGenerationFailure"


class MacInUse(errors.Conflict):
    """The requested MAC address is another port's."""

    neutron_type = "MacAddressInUse"


def _default_pools(subnet: Subnet) -> list[tuple[IPv4, IPv4]]:
    """Neutron's default: every host address of the CIDR except the gateway."""
    if ipaddress.ip_network(subnet.cidr, strict=False).version != 4:
        return []
    net = ipaddress.IPv4Network(subnet.cidr, strict=False)
    if net.num_addresses <= 2:  # /31 and /32 have no network or broadcast address to skip
        first, last = net.network_address, net.broadcast_address
    else:
        first, last = net.network_address + 1, net.broadcast_address - 1
    gateway = ipaddress.IPv4Address(subnet.gateway_ip) if subnet.gateway_ip else None
    if gateway is None or not first <= gateway <= last:
        return [(first, last)]
    pools = []
    if first < gateway:
        pools.append((first, gateway - 1))
    if gateway < last:
        pools.append((gateway + 1, last))
    return pools


def pools_of(subnet: Subnet) -> list[tuple[IPv4, IPv4]]:
    if not subnet.allocation_pools:
        return _default_pools(subnet)
    return [
        (ipaddress.IPv4Address(pool["start"]), ipaddress.IPv4Address(pool["end"]))
        for pool in subnet.allocation_pools
    ]


def allocation_pools(subnet: Subnet) -> list[dict[str, str]]:
    """The pools as the API shows them: stored ones, or the default the CIDR implies."""
    return [{"start": str(start), "end": str(end)} for start, end in pools_of(subnet)]


def _ipv4_subnets(network: Network) -> list[Subnet]:
    return [
        s
        for s in Subnet.objects.filter(network=network).order_by("created_at", "id")
        if s.ip_version == 4
    ]


def _used(network: Network, exclude_port: object = None) -> set[IPv4]:
    used: set[IPv4] = set()
    ports = Port.objects.filter(network=network)
    if exclude_port is not None:
        ports = ports.exclude(pk=exclude_port)
    for fixed_ips in ports.values_list("fixed_ips", flat=True):
        for entry in fixed_ips or []:
            try:
                address = ipaddress.ip_address(entry["ip_address"])
            except (KeyError, TypeError, ValueError):
                continue
            if isinstance(address, ipaddress.IPv4Address):
                used.add(address)
    return used


def _free(subnet: Subnet, used: set[IPv4]) -> Iterator[IPv4]:
    gateway = ipaddress.ip_address(subnet.gateway_ip) if subnet.gateway_ip else None
    for start, end in pools_of(subnet):
        address = start
        while address <= end:
            if address not in used and address != gateway:
                yield address
            address += 1


def _requested(
    subnets: list[Subnet], fixed_ip: str, used: set[IPv4], allow_gateway: bool = False
) -> tuple[Subnet, IPv4]:
    try:
        address = ipaddress.IPv4Address(fixed_ip)
    except ValueError:
        raise InvalidAddress(f"Invalid IPv4 address {fixed_ip!r}.") from None
    for subnet in subnets:
        net = ipaddress.ip_network(subnet.cidr, strict=False)
        if address not in net:
            continue
        reserved = {net.network_address, net.broadcast_address} if net.num_addresses > 2 else set()
        if subnet.gateway_ip and not allow_gateway:
            reserved.add(ipaddress.ip_address(subnet.gateway_ip))
        if address in reserved:
            raise InvalidAddress(f"IP address {address} is not a usable host address.")
        if address in used:
            raise AddressInUse(f"IP address {address} already allocated in subnet {subnet.id}")
        return subnet, address
    raise InvalidAddress(f"IP address {address} is not in any subnet of the network.")


def _random_mac() -> str:
    return MAC_PREFIX + "".join(f":{b:02x}" for b in secrets.token_bytes(3))


def lock(network: Network) -> Network:
    """The network's row, locked for this transaction: the one gate of every address change."""
    return Network.objects.select_for_update(no_key=True).get(pk=network.pk)


def assign(
    locked: Network,
    requests: list[dict] | None,
    *,
    port: Port | None = None,
    allow_gateway: bool = False,
) -> list[dict]:
    """The fixed_ips for a port of `locked` (a network row held by lock()), as Neutron picks them.

    `requests` None: one address, the lowest free one of the first IPv4 subnet that has one (none
    if the network has no subnet). Else one address per entry: {"subnet_id"} the next free one of
    that subnet, {"ip_address"} that address in whichever subnet holds it, both: that address,
    which must be in that subnet. `port`: the port being changed, whose own addresses stay its.
    """
    subnets = _ipv4_subnets(locked)
    used = _used(locked, exclude_port=port.pk if port is not None else None)
    if requests is None:
        for subnet in subnets:
            free = next(_free(subnet, used), None)
            if free is not None:
                return [{"subnet_id": str(subnet.id), "ip_address": str(free)}]
        if subnets:
            raise NoFreeAddress(f"No more IP addresses available on network {locked.id}.")
        return []
    by_id = {str(s.id): s for s in subnets}
    chosen: list[dict] = []
    for request in requests:
        subnet_id, fixed_ip = request.get("subnet_id"), request.get("ip_address")
        named: Subnet | None = by_id.get(str(subnet_id)) if subnet_id is not None else None
        if subnet_id is not None and named is None:
            raise InvalidAddress(
                f"Failed to create port on network {locked.id}, because fixed_ips included "
                f"invalid subnet {subnet_id}.")
        if fixed_ip is not None:
            held, address = _requested(
                [named] if named else subnets, str(fixed_ip), used, allow_gateway)
        else:
            assert named is not None  # the caller asks for a subnet, an address or both
            held, free = named, next(_free(named, used), None)
            if free is None:
                raise NoFreeAddress(f"No more IP addresses available on network {locked.id}.")
            address = free
        used.add(address)
        chosen.append({"subnet_id": str(held.id), "ip_address": str(address)})
    return chosen


def create_port(
    locked: Network,
    *,
    fixed_ips: list[dict],
    mac_address: str | None = None,
    **fields: object,
) -> Port:
    """A port row on `locked` with addresses from assign(), and `mac_address` or a unique
    random MAC. Call inside the transaction that locked the network."""
    if mac_address is not None:
        if Port.objects.filter(mac_address=mac_address).exists():
            raise MacInUse(f"Unable to complete operation for network {locked.id}. The mac "
                           f"address {mac_address} is in use.")
        return Port.objects.create(network=locked, mac_address=mac_address,
                                   fixed_ips=fixed_ips, **fields)
    for _ in range(_MAC_ATTEMPTS):
        mac = _random_mac()
        if Port.objects.filter(mac_address=mac).exists():
            continue
        try:
            # A savepoint, so that losing a MAC race to another network's allocation
            # costs one retry rather than the whole transaction.
            with transaction.atomic():
                return Port.objects.create(network=locked, mac_address=mac,
                                           fixed_ips=fixed_ips, **fields)
        except IntegrityError:
            continue
    raise errors.Conflict("Could not generate a unique MAC address.")


def allocate_port(
    network: Network,
    project_id: str | None,
    device_id: str,
    fixed_ip: str | None = None,
    *,
    name: str = "",
    device_owner: str = DEFAULT_DEVICE_OWNER,
) -> Port:
    """A new port on `network` for `device_id` (an instance uuid) with one IPv4 address: `fixed_ip`
    if given and free, else the lowest free address of the first IPv4 subnet's pools."""
    with transaction.atomic():
        locked = lock(network)
        subnets = _ipv4_subnets(locked)
        if not subnets:
            raise NoSubnet(f"Network {locked.id} has no IPv4 subnet.")
        used = _used(locked)
        if fixed_ip:
            subnet, address = _requested(subnets, fixed_ip, used)
        else:
            subnet = subnets[0]
            free = next(_free(subnet, used), None)
            if free is None:
                raise NoFreeAddress(f"No more IP addresses available on network {locked.id}.")
            address = free
        return create_port(
            locked,
            fixed_ips=[{"subnet_id": str(subnet.id), "ip_address": str(address)}],
            name=name, project_id=project_id, device_id=device_id, device_owner=device_owner,
        )


def release_ports(device_id: str) -> int:
    """Delete every port of a device, freeing its addresses; returns how many there were."""
    if not device_id:
        # An empty device_id matches every unbound port: never a request to delete them all.
        raise ValueError("device_id is required")
    _, per_model = Port.objects.filter(device_id=device_id).delete()
    return per_model.get(Port._meta.label, 0)
