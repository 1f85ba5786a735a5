"""The metadata service's answers: which instance asks, and what it is told.

A guest is known by the network its request came in on and its source address, both as its
host's metadata proxy saw them on the socket (compute_agent/network/metadata_proxy.py; the edge,
cloud/api/metadata.py, has checked the host's signature). The port on that network holding that
fixed address is the guest's; its instance (not deleted) is who asks.

Two more checks, because an address alone is not always one guest's:
- a joined host speaks only for guests it runs (a host that was broken into learns no other
  host's user data);
- a port of another project that may send from the same address (an allowed address pair) makes
  the answer ambiguous: none is given, or one project could read the other's user data by
  spoofing an address its pair allows.

The documents are those of OpenStack's metadata service: /openstack/<version>/meta_data.json
(the config drive's meta_data.json, compute_agent/config_drive.py, plus what only a live service
has), user_data, network_data.json, vendor_data.json and vendor_data2.json (empty), and the
EC2-style /<version>/meta-data/… and /<version>/user-data that cloud-init's Ec2 datasource and
older tools read.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import logging
import os
import uuid
from dataclasses import dataclass
from typing import Any

from cloud import errors
from cloud.ids import ec2_id, parse_uuid
from cloud.network.models import FloatingIp, Port, Subnet

from .models import Instance
from .servers import hostname_for

LOG = logging.getLogger(__name__)

COMPUTE_OWNER_PREFIX = "compute:"
OPENSTACK_VERSIONS = ("2012-08-10", "2013-04-04", "2013-10-17", "2015-10-15", "2016-06-30",
                      "2016-10-06", "2017-02-22", "2018-08-27", "2020-10-14")
EC2_VERSIONS = ("1.0", "2007-01-19", "2007-03-01", "2007-08-29", "2007-10-10", "2007-12-15",
                "2008-02-01", "2008-09-01", "2009-04-04")
LATEST = "latest"
JSON = "application/json"
TEXT = "text/plain"


@dataclass(frozen=True)
class Guest:
    instance: Instance
    port: Port
    address: str


@dataclass(frozen=True)
class Document:
    body: bytes
    content_type: str = TEXT


def find_guest(network_id: str, address: str, host: str = "") -> Guest:
    """The instance whose port on `network_id` holds `address`; NotFound when there is none (or
    when `host`, a joined host, does not run it, or when the address is ambiguous)."""
    try:
        network = uuid.UUID(network_id)
        address = str(ipaddress.ip_address(address))
    except ValueError:
        raise errors.NotFound("No instance has this address on this network.") from None
    ports = Port.objects.filter(network_id=network, fixed_ips__contains=[{"ip_address": address}],
                                device_owner__startswith=COMPUTE_OWNER_PREFIX)
    for port in ports:
        instance = Instance.objects.filter(uuid=_uuid(port.device_id), deleted=False).first()
        if instance is None:
            continue
        if host and instance.host != host:
            LOG.warning("metadata: host %s asked for instance %s, which runs on %s", host,
                        instance.uuid, instance.host)
            break
        if _others_may_send_from(network, address, port, instance):
            LOG.warning("metadata: %s on network %s is also an allowed address of another "
                        "project's port; no answer", address, network)
            break
        return Guest(instance=instance, port=port, address=address)
    raise errors.NotFound("No instance has this address on this network.")


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def _others_may_send_from(network: uuid.UUID, address: str, port: Port,
                          instance: Instance) -> bool:
    wanted = ipaddress.ip_address(address)
    others = Port.objects.filter(network_id=network).exclude(pk=port.pk).exclude(
        allowed_address_pairs=[])
    for other in others:
        if other.project_id == instance.project_id:
            continue
        for pair in other.allowed_address_pairs or []:
            try:
                if wanted in ipaddress.ip_network(pair.get("ip_address", ""), strict=False):
                    return True
            except ValueError:
                continue
    return False


# --- documents


def answer(guest: Guest, path: str) -> Document:
    """The document at `path` (what follows /metadata) for `guest`; NotFound otherwise."""
    parts = [p for p in path.split("/") if p]
    if not parts:
        return _listing(["openstack", *EC2_VERSIONS, LATEST])
    if parts[0] == "openstack":
        return _openstack(guest, parts[1:])
    if parts[0] in EC2_VERSIONS or parts[0] == LATEST:
        return _ec2(guest, parts[1:])
    raise errors.NotFound("No such metadata.")


def _listing(names: list[str]) -> Document:
    return Document("\n".join(names).encode())


def _json(data: Any) -> Document:
    return Document(json.dumps(data, sort_keys=True).encode(), JSON)


def _openstack(guest: Guest, parts: list[str]) -> Document:
    if not parts:
        return _listing([*OPENSTACK_VERSIONS, LATEST])
    if parts[0] not in OPENSTACK_VERSIONS and parts[0] != LATEST:
        raise errors.NotFound("No such metadata version.")
    user_data = user_data_of(guest.instance)
    if len(parts) == 1:
        names = ["meta_data.json", "network_data.json", "vendor_data.json", "vendor_data2.json"]
        return _listing(names + (["user_data"] if user_data is not None else []))
    if len(parts) > 2:
        raise errors.NotFound("No such metadata.")
    name = parts[1]
    if name == "meta_data.json":
        return _json(meta_data(guest))
    if name == "network_data.json":
        return _json(network_data(guest))
    if name in ("vendor_data.json", "vendor_data2.json"):
        return _json({})
    if name == "user_data" and user_data is not None:
        return Document(user_data, "application/octet-stream")
    raise errors.NotFound("No such metadata.")


def user_data_of(instance: Instance) -> bytes | None:
    """The user's data as the guest gets it (the API keeps it base64-encoded, as Nova's does)."""
    if not instance.user_data:
        return None
    try:
        return base64.b64decode(instance.user_data, validate=True)
    except (binascii.Error, ValueError):
        return instance.user_data.encode()


def _hostname(instance: Instance) -> str:
    return instance.hostname or hostname_for(instance.display_name)


def meta_data(guest: Guest) -> dict[str, Any]:
    """The config drive's meta_data.json (same keys, same values), plus what a live service
    adds: the devices list (none tagged) and a fresh random seed."""
    instance = guest.instance
    data: dict[str, Any] = {
        "uuid": str(instance.uuid),
        "name": instance.display_name,
        "hostname": _hostname(instance),
        "launch_index": instance.launch_index,
        "availability_zone": instance.availability_zone or None,
        "meta": {str(k): str(v) for k, v in (instance.metadata or {}).items()},
        "project_id": str(instance.project_id),
        "devices": [],
        "random_seed": base64.b64encode(os.urandom(512)).decode(),
    }
    if instance.key_data:
        key_name = instance.key_name or "default"
        data["public_keys"] = {key_name: instance.key_data}
        data["keys"] = [{"name": key_name, "type": "ssh", "data": instance.key_data}]
    return data


def network_data(guest: Guest) -> dict[str, Any]:
    """Links, networks and DNS services of the instance's ports, with the addresses, masks and
    routes their subnets give (what cloud-init needs to configure them without DHCP)."""
    ports = Port.objects.filter(device_id=str(guest.instance.uuid)).select_related(
        "network").order_by("created_at", "id")
    links: list[dict[str, Any]] = []
    networks: list[dict[str, Any]] = []
    services: list[dict[str, str]] = []
    for port in ports:
        link_id = f"tap{str(port.id)[:11]}"
        links.append({"id": link_id, "type": "phy", "ethernet_mac_address": port.mac_address,
                      "mtu": port.network.mtu, "vif_id": str(port.id)})
        for fixed in port.fixed_ips or []:
            subnet = Subnet.objects.filter(pk=_uuid(str(fixed.get("subnet_id", "")))).first()
            if subnet is None or not fixed.get("ip_address"):
                continue
            net = ipaddress.ip_network(subnet.cidr, strict=False)
            routes = [{"network": str(ipaddress.ip_network(r["destination"]).network_address),
                       "netmask": str(ipaddress.ip_network(r["destination"]).netmask),
                       "gateway": r["nexthop"]}
                      for r in subnet.host_routes or [] if r.get("destination")]
            if subnet.gateway_ip:
                default = "0.0.0.0" if net.version == 4 else "::"
                routes.append({"network": default, "netmask": default,
                               "gateway": subnet.gateway_ip})
            networks.append({
                "id": f"network{len(networks)}", "link": link_id,
                "type": "ipv4" if net.version == 4 else "ipv6",
                "ip_address": fixed["ip_address"], "netmask": str(net.netmask),
                "routes": routes, "network_id": str(port.network_id),
            })
            for server in subnet.dns_nameservers or []:
                service = {"type": "dns", "address": server}
                if service not in services:
                    services.append(service)
    return {"links": links, "networks": networks, "services": services}


# --- EC2


def _ec2(guest: Guest, parts: list[str]) -> Document:
    user_data = user_data_of(guest.instance)
    if not parts:
        return _listing(["meta-data/"] + (["user-data"] if user_data is not None else []))
    if parts[0] == "user-data" and len(parts) == 1 and user_data is not None:
        return Document(user_data, "application/octet-stream")
    if parts[0] != "meta-data":
        raise errors.NotFound("No such metadata.")
    node: Any = ec2_meta_data(guest)
    for part in parts[1:]:
        if not isinstance(node, dict) or part not in node:
            raise errors.NotFound("No such metadata.")
        node = node[part]
    if parts[1:] == ["public-keys"]:
        # EC2 lists keys as index=name.
        return _listing([f"0={guest.instance.key_name or 'default'}"] if node else [])
    if isinstance(node, dict):
        return _listing([f"{k}/" if isinstance(v, dict) else k for k, v in node.items()])
    return Document(str(node).encode())


def ec2_meta_data(guest: Guest) -> dict[str, Any]:
    """The EC2 meta-data tree: a dict is a folder, anything else a leaf."""
    instance = guest.instance
    hostname = _hostname(instance)
    floating = FloatingIp.objects.filter(port=guest.port, fixed_ip_address=guest.address).first()
    flavor_name = instance.flavor.name if instance.flavor is not None else \
        str(instance.flavor_snapshot.get("name", ""))
    tree: dict[str, Any] = {
        # The ids the EC2 API gives the same server and image (cloud/api/ec2).
        "ami-id": ec2_id("ami", instance.image_ref) if parse_uuid(instance.image_ref) else "",
        "ami-launch-index": instance.launch_index,
        "ami-manifest-path": "FIXME",  # as Nova answers: there is no manifest
        "block-device-mapping": {"ami": "vda", "root": "/dev/vda"},
        "hostname": hostname,
        "instance-action": "none",
        "instance-id": ec2_id("i", instance.uuid),
        "instance-type": flavor_name,
        "local-hostname": hostname,
        "local-ipv4": guest.address,
        "placement": {"availability-zone": instance.availability_zone or ""},
        "public-hostname": hostname,
        "public-ipv4": floating.floating_ip_address if floating is not None else "",
        "reservation-id": instance.reservation_id or "",
        "security-groups": "\n".join(str(g) for g in instance.security_groups or []),
    }
    if instance.key_data:
        tree["public-keys"] = {"0": {"openssh-key": instance.key_data}}
    else:
        tree["public-keys"] = {}
    return tree
