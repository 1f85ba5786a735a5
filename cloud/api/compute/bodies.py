"""Response bodies for servers and flavors, built for the requested microversion.

Strict clients (Tempest) reject keys a version does not define, so every optional key is added
only at the version that introduced it and dropped at the one that removed it. A server body has
four views, as in Nova: the detail list, show, and the answers to update and rebuild (which below
2.75 leave out the extensions).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC

from cloud.compute import availability_zones, hosts, server_groups, server_tags, states
from cloud.compute.models import COMPUTE_BINARY, Flavor, Instance, InstanceFault, Service
from cloud.images.models import Image
from cloud.network.models import Port

from ..microversion import APIVersion

DETAIL, SHOW, UPDATE, REBUILD = "detail", "show", "update", "rebuild"


def iso(dt) -> str | None:
    if dt is None:
        return None
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_micro(dt) -> str | None:
    if dt is None:
        return None
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def links(url: Callable[..., str], *parts: str) -> list[dict]:
    return [
        {"rel": "self", "href": url(*parts)},
        {"rel": "bookmark", "href": url(*parts, bookmark=True)},
    ]


# --- flavors


def flavor_summary(flavor: Flavor, version: APIVersion, url: Callable[..., str]) -> dict:
    body = {"id": flavor.flavorid, "name": flavor.name, "links": links(url, "flavors", flavor.flavorid)}
    if version.at_least("2.55"):
        body["description"] = flavor.description
    return body


def flavor_detail(
    flavor: Flavor, version: APIVersion, url: Callable[..., str], extra_specs: bool = True
) -> dict:
    """2.55 description; 2.61 extra_specs (for whom the policy lets read them); 2.75 swap 0 rather
    than ""; 2.102 without rxtx_factor and OS-FLV-DISABLED:disabled."""
    body = flavor_summary(flavor, version, url)
    body.update(
        {
            "ram": flavor.memory_mb,
            "vcpus": flavor.vcpus,
            "disk": flavor.root_gb,
            "swap": flavor.swap or (0 if version.at_least("2.75") else ""),
            "OS-FLV-EXT-DATA:ephemeral": flavor.ephemeral_gb,
            "os-flavor-access:is_public": flavor.is_public,
        }
    )
    if not version.at_least("2.102"):
        body["OS-FLV-DISABLED:disabled"] = flavor.disabled
        body["rxtx_factor"] = flavor.rxtx_factor
    if version.at_least("2.61") and extra_specs:
        body["extra_specs"] = dict(flavor.extra_specs or {})
    return body


# --- servers

# Nova shows progress only in these statuses, and a fault only in these.
_PROGRESS_STATUSES = frozenset({"ACTIVE", "BUILD", "REBUILD", "RESIZE", "VERIFY_RESIZE",
                                "MIGRATING"})
_FAULT_STATUSES = frozenset({"ERROR", "DELETED"})
# Image properties a server shows from 2.98: the ones Nova's image metadata defines.
_IMAGE_PROPERTY_PREFIXES = ("hw_", "img_", "os_", "traits_")
_IMAGE_PROPERTY_NAMES = frozenset({
    "architecture", "auto_disk_config", "vm_mode", "hypervisor_type", "hypervisor_version_requires",
    "root_device_name", "owner_id", "ipxe_boot", "cache_in_nova", "bittorrent",
})


class ServerContext:
    """What a page of servers needs besides the rows, fetched in a fixed number of queries."""

    def __init__(self, instances: Iterable[Instance], is_admin: bool,
                 version: APIVersion | None = None):
        instances = list(instances)
        uuids = [str(i.uuid) for i in instances]
        self.ports = ports_of_servers(uuids)
        self.faults: dict[str, InstanceFault] = {}
        errored = [i.pk for i in instances if i.vm_state in (states.ERROR, states.DELETED)]
        if errored:
            for fault in InstanceFault.objects.filter(instance_id__in=errored).order_by(
                "instance_id", "-created_at", "-id"
            ):
                self.faults.setdefault(str(fault.instance_id), fault)
        host_names = {i.host for i in instances if i.host}
        # A placed server is in its host's zone, whatever it asked for: one query per page.
        self.zones = availability_zones.host_zones(host_names)
        # Admins see every host_status; others only UNKNOWN (Nova's "unknown-only" rule): that
        # their server's host stopped answering, without learning anything else about hosts.
        self.host_status: dict[str, str] = {}
        if host_names:
            for service in Service.objects.filter(host__in=host_names, binary=COMPUTE_BINARY):
                status = hosts.host_status(service)
                if is_admin or status == hosts.HOST_UNKNOWN:
                    self.host_status[service.host] = status
        version = version or APIVersion(2, 1)
        self.tags = server_tags.tags_by_server(uuids) if version.at_least("2.26") else {}
        self.groups: dict[str, list[str]] = {}
        if version.at_least("2.71") and uuids:
            self.groups = server_groups.groups_of_servers(uuids)
        self.image_properties: dict[str, dict[str, str | None]] = {}
        if version.at_least("2.98"):
            refs = {i.image_ref for i in instances if i.image_ref}
            for image_id, properties in Image.objects.filter(pk__in=refs).values_list(
                "id", "properties"
            ):
                self.image_properties[str(image_id)] = _standard_properties(properties or {})


def _standard_properties(properties: dict) -> dict[str, str | None]:
    return {
        key: None if value is None else str(value)[:255]
        for key, value in properties.items()
        if key.startswith(_IMAGE_PROPERTY_PREFIXES) or key in _IMAGE_PROPERTY_NAMES
    }


@dataclass
class PortAddresses:
    """What a server's addresses show of one of its ports."""

    network: str
    mac_address: str
    fixed_ips: list[dict]
    # (floating address, the fixed address it maps to), in the order they were made
    floating: list[tuple[str, str | None]] = field(default_factory=list)


def ports_of_servers(uuids: list[str]) -> dict[str, list[PortAddresses]]:
    """server uuid → its ports' addresses, for a page of servers in one query (the ports joined
    with their networks and floating IPs: columns, not model objects)."""
    found: dict[str, list[PortAddresses]] = {}
    if not uuids:
        return found
    rows = Port.objects.filter(device_id__in=uuids).order_by(
        "created_at", "id", "floating_ips__created_at", "floating_ips__id").values_list(
        "id", "device_id", "network__name", "mac_address", "fixed_ips",
        "floating_ips__floating_ip_address", "floating_ips__fixed_ip_address")
    last_id = None
    for port_id, device_id, network, mac, fixed_ips, floating, mapped in rows:
        if port_id != last_id:
            last_id = port_id
            port = PortAddresses(network, mac, fixed_ips or [])
            found.setdefault(device_id, []).append(port)
        if floating is not None:
            port.floating.append((floating, mapped))
    return found


def addresses(ports: list[PortAddresses], extended: bool) -> dict:
    result: dict[str, list] = {}
    for port in ports:
        for fixed in port.fixed_ips:
            entry = {"version": 6 if ":" in fixed["ip_address"] else 4, "addr": fixed["ip_address"]}
            if extended:
                entry["OS-EXT-IPS:type"] = "fixed"
                entry["OS-EXT-IPS-MAC:mac_addr"] = port.mac_address
            result.setdefault(port.network, []).append(entry)
            # As Nova shows them: a floating IP follows the fixed address it maps to.
            for floating, mapped in port.floating:
                if mapped != fixed["ip_address"]:
                    continue
                entry = {"version": 4, "addr": floating}
                if extended:
                    entry["OS-EXT-IPS:type"] = "floating"
                    entry["OS-EXT-IPS-MAC:mac_addr"] = port.mac_address
                result[port.network].append(entry)
    return result


def server_summary(instance: Instance, url: Callable[..., str]) -> dict:
    uuid = str(instance.uuid)
    return {"id": uuid, "name": instance.display_name, "links": links(url, "servers", uuid)}


def _image(instance: Instance, version: APIVersion, url: Callable[..., str],
           page: ServerContext) -> dict | str:
    if not instance.image_ref:
        return ""
    image: dict = {
        "id": instance.image_ref,
        "links": [{"rel": "bookmark", "href": url("images", instance.image_ref, bookmark=True)}],
    }
    if version.at_least("2.98"):
        image["properties"] = page.image_properties.get(instance.image_ref, {})
    return image


def _flavor(instance: Instance, version: APIVersion, url: Callable[..., str]) -> dict:
    flavor = instance.flavor_snapshot
    if version.at_least("2.47"):
        return {
            "vcpus": flavor.get("vcpus", instance.vcpus),
            "ram": flavor.get("ram", instance.memory_mb),
            "disk": flavor.get("disk", instance.root_gb),
            "ephemeral": flavor.get("ephemeral", instance.ephemeral_gb),
            "swap": flavor.get("swap", 0),
            "original_name": flavor.get("name", ""),
            "extra_specs": flavor.get("extra_specs", {}),
        }
    flavor_id = flavor.get("id", "")
    return {
        "id": flavor_id,
        "links": [{"rel": "bookmark", "href": url("flavors", flavor_id, bookmark=True)}],
    }


def _fault(instance: Instance, page: ServerContext, is_admin: bool) -> dict | None:
    fault = page.faults.get(str(instance.uuid))
    if fault is None:
        return None
    body = {"code": fault.code, "created": iso(fault.created_at), "message": fault.message}
    if fault.details and (is_admin or fault.code != 500):
        body["details"] = fault.details
    return body


def _base(instance: Instance, version: APIVersion, url: Callable[..., str], page: ServerContext,
          is_admin: bool, extended_addresses: bool) -> dict:
    uuid = str(instance.uuid)
    status = "DELETED" if instance.deleted else instance.status
    ports = page.ports.get(uuid, [])
    body = {
        "id": uuid,
        "name": instance.display_name,
        "status": status,
        "tenant_id": instance.project_id,
        "user_id": instance.user_id,
        "metadata": instance.metadata,
        "hostId": _host_id(instance),
        "created": iso(instance.created_at),
        "updated": iso(instance.updated_at),
        "links": links(url, "servers", uuid),
        "image": _image(instance, version, url, page),
        "flavor": _flavor(instance, version, url),
        "addresses": addresses(ports, extended=extended_addresses),
        "accessIPv4": instance.access_ip_v4,
        "accessIPv6": instance.access_ip_v6,
        "OS-DCF:diskConfig": "MANUAL",
    }
    if status in _FAULT_STATUSES:
        fault = _fault(instance, page, is_admin)
        if fault is not None:
            body["fault"] = fault
    if status in _PROGRESS_STATUSES:
        body["progress"] = instance.progress
    return body


def _extensions(instance: Instance, version: APIVersion, page: ServerContext, is_admin: bool,
                user_data: bool) -> dict:
    """What the show and list views add to the base body (and update and rebuild from 2.75)."""
    uuid = str(instance.uuid)
    zone = (availability_zones.zone_of(instance.host, page.zones) if instance.host
            else instance.availability_zone or "")
    body: dict = {
        "OS-EXT-AZ:availability_zone": zone,
        "config_drive": "True" if instance.config_drive else "",
        "key_name": instance.key_name,
        "OS-SRV-USG:launched_at": iso_micro(instance.launched_at),
        "OS-SRV-USG:terminated_at": iso_micro(instance.terminated_at),
    }
    groups = instance.security_groups or []
    if groups and page.ports.get(uuid):
        body["security_groups"] = [{"name": name} for name in groups]
    if is_admin:
        body["OS-EXT-SRV-ATTR:host"] = instance.host
        body["OS-EXT-SRV-ATTR:instance_name"] = f"instance-{uuid}"
        body["OS-EXT-SRV-ATTR:hypervisor_hostname"] = instance.node
        if version.at_least("2.3"):
            body.update(
                {
                    "OS-EXT-SRV-ATTR:hostname": instance.hostname,
                    "OS-EXT-SRV-ATTR:kernel_id": "",
                    "OS-EXT-SRV-ATTR:launch_index": instance.launch_index,
                    "OS-EXT-SRV-ATTR:ramdisk_id": "",
                    "OS-EXT-SRV-ATTR:reservation_id": instance.reservation_id,
                    "OS-EXT-SRV-ATTR:root_device_name": "/dev/vda",
                }
            )
            if user_data:
                body["OS-EXT-SRV-ATTR:user_data"] = instance.user_data
    body.update(
        {
            "OS-EXT-STS:task_state": states.shown_task_state(instance.vm_state,
                                                             instance.task_state),
            "OS-EXT-STS:vm_state": instance.vm_state,
            "OS-EXT-STS:power_state": states.POWER_STATE_CODES.get(instance.power_state, 0),
            "os-extended-volumes:volumes_attached": [],
        }
    )
    if version.at_least("2.16") and (is_admin or instance.host in page.host_status):
        body["host_status"] = page.host_status.get(instance.host or "", "")
    return body


def server_detail(
    instance: Instance,
    version: APIVersion,
    url: Callable[..., str],
    page: ServerContext,
    is_admin: bool,
    view: str = SHOW,
) -> dict:
    """The server as one of Nova's views shows it at `version`."""
    full = view in (DETAIL, SHOW) or version.at_least("2.75")
    uuid = str(instance.uuid)
    body = _base(instance, version, url, page, is_admin, extended_addresses=full)
    if full:
        body.update(_extensions(instance, version, page, is_admin, user_data=view != REBUILD))
    elif view == REBUILD and version.at_least("2.54"):
        body["key_name"] = instance.key_name
    if version.at_least("2.9"):
        body["locked"] = instance.locked
    if version.at_least("2.19"):
        body["description"] = instance.description
    if version.at_least("2.26"):
        body["tags"] = page.tags.get(uuid, [])
    if version.at_least("2.63"):
        body["trusted_image_certificates"] = None  # no Kumo host validates image signatures
    if version.at_least("2.71") and view != DETAIL:
        body["server_groups"] = page.groups.get(uuid, [])
    if version.at_least("2.73"):
        body["locked_reason"] = instance.locked_reason if instance.locked else None
    if version.at_least("2.90"):
        body["OS-EXT-SRV-ATTR:hostname"] = instance.hostname
    if version.at_least("2.96") and full:
        body["pinned_availability_zone"] = instance.availability_zone
    if version.at_least("2.100"):
        body["scheduler_hints"] = dict(instance.scheduler_hints or {})
    if view == REBUILD and version.at_least("2.57"):
        body["user_data"] = instance.user_data
    return body


def server_reduced(
    instance: Instance, version: APIVersion, url: Callable[..., str], is_admin: bool,
    view: str = UPDATE,
) -> dict:
    """The answer to an update or a rebuild (Nova's: the show body without its extensions below
    2.75, the whole of it from there)."""
    page = ServerContext([instance], is_admin, version)
    return server_detail(instance, version, url, page, is_admin, view=view)


def _host_id(instance: Instance) -> str:
    # Nova's hostId: a per-project hash of the host, so tenants can tell co-location apart without
    # learning host names.
    if not instance.host:
        return ""
    return hashlib.sha224((instance.project_id + instance.host).encode()).hexdigest()
