"""Response bodies for Compute resources, built for the requested microversion.

Strict clients (Tempest) reject keys a version does not define, so every optional key is added
only at the version that introduced it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from datetime import UTC

from cloud.compute import availability_zones, hosts, states
from cloud.compute.models import (
    COMPUTE_BINARY,
    ComputeNode,
    Flavor,
    Instance,
    InstanceFault,
    Service,
)
from cloud.network.models import Port

from ..microversion import APIVersion


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


def flavor_detail(flavor: Flavor, version: APIVersion, url: Callable[..., str]) -> dict:
    body = flavor_summary(flavor, version, url)
    body.update(
        {
            "ram": flavor.memory_mb,
            "vcpus": flavor.vcpus,
            "disk": flavor.root_gb,
            "swap": flavor.swap or "",
            "OS-FLV-EXT-DATA:ephemeral": flavor.ephemeral_gb,
            "OS-FLV-DISABLED:disabled": flavor.disabled,
            "os-flavor-access:is_public": flavor.is_public,
            "rxtx_factor": flavor.rxtx_factor,
        }
    )
    return body


# --- servers


class ServerContext:
    """What a page of servers needs besides the rows, fetched in a fixed number of queries."""

    def __init__(self, instances: Iterable[Instance], is_admin: bool):
        instances = list(instances)
        uuids = [str(i.uuid) for i in instances]
        self.ports: dict[str, list[Port]] = {}
        if uuids:
            for port in Port.objects.filter(device_id__in=uuids).select_related("network"):
                self.ports.setdefault(port.device_id, []).append(port)
        self.faults: dict[str, InstanceFault] = {}
        errored = [i.pk for i in instances if i.vm_state == states.ERROR]
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
                status = _host_status(service)
                if is_admin or status == hosts.HOST_UNKNOWN:
                    self.host_status[service.host] = status


def _host_status(service: Service) -> str:
    return hosts.host_status(service)


def addresses(ports: list[Port], extended: bool) -> dict:
    result: dict[str, list] = {}
    for port in ports:
        for fixed in port.fixed_ips:
            entry = {"version": 6 if ":" in fixed["ip_address"] else 4, "addr": fixed["ip_address"]}
            if extended:
                entry["OS-EXT-IPS:type"] = "fixed"
                entry["OS-EXT-IPS-MAC:mac_addr"] = port.mac_address
            result.setdefault(port.network.name, []).append(entry)
    return result


def server_summary(instance: Instance, url: Callable[..., str]) -> dict:
    uuid = str(instance.uuid)
    return {"id": uuid, "name": instance.display_name, "links": links(url, "servers", uuid)}


def server_detail(
    instance: Instance,
    version: APIVersion,
    url: Callable[..., str],
    page: ServerContext,
    is_admin: bool,
) -> dict:
    uuid = str(instance.uuid)
    flavor = instance.flavor_snapshot
    body = {
        "id": uuid,
        "name": instance.display_name,
        "status": instance.status,
        "tenant_id": instance.project_id,
        "user_id": instance.user_id,
        "metadata": instance.metadata,
        "hostId": _host_id(instance),
        "created": iso(instance.created_at),
        "updated": iso(instance.updated_at),
        "links": links(url, "servers", uuid),
        "image": {
            "id": instance.image_ref,
            "links": [{"rel": "bookmark", "href": url("images", instance.image_ref, bookmark=True)}],
        }
        if instance.image_ref
        else "",
        "addresses": addresses(page.ports.get(uuid, []), extended=True),
        "accessIPv4": instance.access_ip_v4,
        "accessIPv6": instance.access_ip_v6,
        "config_drive": "True" if instance.config_drive else "",
        "key_name": instance.key_name,
        "security_groups": [{"name": "default"}] if page.ports.get(uuid) else [],
        "OS-DCF:diskConfig": "MANUAL",
        "OS-EXT-AZ:availability_zone": availability_zones.zone_of(instance.host, page.zones)
        if instance.host
        else instance.availability_zone or "",
        "OS-EXT-STS:task_state": instance.task_state,
        "OS-EXT-STS:vm_state": instance.vm_state,
        "OS-EXT-STS:power_state": states.POWER_STATE_CODES.get(instance.power_state, 0),
        "OS-SRV-USG:launched_at": iso_micro(instance.launched_at),
        "OS-SRV-USG:terminated_at": iso_micro(instance.terminated_at),
        "os-extended-volumes:volumes_attached": [],
    }
    if instance.vm_state in (states.BUILDING, states.ACTIVE):
        body["progress"] = instance.progress
    if version.at_least("2.47"):
        body["flavor"] = {
            "vcpus": flavor.get("vcpus", instance.vcpus),
            "ram": flavor.get("ram", instance.memory_mb),
            "disk": flavor.get("disk", instance.root_gb),
            "ephemeral": flavor.get("ephemeral", instance.ephemeral_gb),
            "swap": flavor.get("swap", 0),
            "original_name": flavor.get("name", ""),
            "extra_specs": flavor.get("extra_specs", {}),
        }
    else:
        flavor_id = flavor.get("id", "")
        body["flavor"] = {
            "id": flavor_id,
            "links": [{"rel": "bookmark", "href": url("flavors", flavor_id, bookmark=True)}],
        }
    fault = page.faults.get(uuid)
    if fault is not None and instance.vm_state == states.ERROR:
        body["fault"] = {
            "code": fault.code,
            "created": iso(fault.created_at),
            "message": fault.message,
        }
        if is_admin or fault.code != 500:
            body["fault"]["details"] = fault.details
    if is_admin:
        body["OS-EXT-SRV-ATTR:host"] = instance.host
        body["OS-EXT-SRV-ATTR:hypervisor_hostname"] = instance.node
        body["OS-EXT-SRV-ATTR:instance_name"] = f"instance-{uuid}"
        if version.at_least("2.3"):
            body.update(
                {
                    "OS-EXT-SRV-ATTR:hostname": instance.hostname,
                    "OS-EXT-SRV-ATTR:kernel_id": "",
                    "OS-EXT-SRV-ATTR:launch_index": instance.launch_index,
                    "OS-EXT-SRV-ATTR:ramdisk_id": "",
                    "OS-EXT-SRV-ATTR:reservation_id": instance.reservation_id,
                    "OS-EXT-SRV-ATTR:root_device_name": "/dev/vda",
                    "OS-EXT-SRV-ATTR:user_data": instance.user_data,
                }
            )
    if version.at_least("2.16") and (is_admin or instance.host in page.host_status):
        body["host_status"] = page.host_status.get(instance.host or "", "")
    if version.at_least("2.9"):
        body["locked"] = instance.locked
    if version.at_least("2.19"):
        body["description"] = instance.description
    if version.at_least("2.26"):
        body["tags"] = []
    return body


_REDUCED_KEYS = {
    "id", "name", "status", "tenant_id", "user_id", "metadata", "hostId", "created", "updated",
    "links", "image", "flavor", "addresses", "accessIPv4", "accessIPv6", "OS-DCF:diskConfig",
    "progress", "fault", "locked", "description", "tags",
}


def server_reduced(
    instance: Instance, version: APIVersion, url: Callable[..., str], is_admin: bool
) -> dict:
    """The body Nova answers an update or rebuild with: the show body minus its extensions (no
    OS-EXT-*, key_name, security groups, config drive, MAC addresses); Tempest rejects extra keys."""
    page = ServerContext([instance], is_admin)
    full = server_detail(instance, version, url, page, is_admin)
    body = {key: value for key, value in full.items() if key in _REDUCED_KEYS}
    body["addresses"] = addresses(page.ports.get(str(instance.uuid), []), extended=False)
    return body


def _host_id(instance: Instance) -> str:
    # Nova's hostId: a per-project hash of the host, so tenants can tell co-location apart without
    # learning host names.
    if not instance.host:
        return ""
    return hashlib.sha224((instance.project_id + instance.host).encode()).hexdigest()


# --- hosts


def service_body(service: Service, version: APIVersion, zones: dict[str, str] | None = None) -> dict:
    """`zones` maps host → availability zone (from availability_zones.host_zones)."""
    if service.binary == COMPUTE_BINARY:
        zone = (zones or {}).get(service.host, "nova")
    else:
        zone = "internal"
    body = {
        "id": str(service.uuid) if version.at_least("2.53") else service.id,
        "binary": service.binary,
        "host": service.host,
        "zone": zone,
        "status": "disabled" if service.disabled else "enabled",
        "state": "down" if _host_status(service) in ("DOWN", "UNKNOWN") else "up",
        "updated_at": iso_micro(service.last_seen_up),
        "disabled_reason": service.disabled_reason,
    }
    if version.at_least("2.11"):
        body["forced_down"] = service.forced_down
    return body


def hypervisor_summary(node: ComputeNode, version: APIVersion) -> dict:
    service = node.service
    return {
        "id": str(node.uuid) if version.at_least("2.53") else node.id,
        "hypervisor_hostname": node.hypervisor_hostname,
        "state": "down" if _host_status(service) in ("DOWN", "UNKNOWN") else "up",
        "status": "disabled" if service.disabled else "enabled",
    }


def hypervisor_detail(node: ComputeNode, version: APIVersion) -> dict:
    import json

    body = hypervisor_summary(node, version)
    service = node.service
    free_disk = node.local_gb - node.local_gb_used
    body.update(
        {
            "hypervisor_type": node.hypervisor_type,
            "hypervisor_version": node.hypervisor_version,
            "host_ip": node.host_ip,
            "cpu_info": node.cpu_info if version.at_least("2.28") else json.dumps(node.cpu_info),
            "vcpus": node.vcpus,
            "vcpus_used": node.vcpus_used,
            "memory_mb": node.memory_mb,
            "memory_mb_used": node.memory_mb_used,
            "local_gb": node.local_gb,
            "local_gb_used": node.local_gb_used,
            "free_ram_mb": node.memory_mb - node.memory_mb_used,
            "free_disk_gb": free_disk,
            "disk_available_least": free_disk,
            "current_workload": 0,
            "running_vms": node.running_vms,
            "service": {
                "host": service.host,
                "id": str(service.uuid) if version.at_least("2.53") else service.id,
                "disabled_reason": service.disabled_reason,
            },
        }
    )
    return body
