"""Response bodies for os-services and os-hypervisors, built for the requested microversion.

Hypervisors: 2.28 cpu_info an object (a JSON string before); 2.53 uuids for ids and the servers
of a hypervisor on request (`with_servers`), listed even when there are none from 2.75; 2.88 drops
the resource counts (vcpus, memory, disk, running_vms, cpu_info…) and adds `uptime`.
"""

from __future__ import annotations

import json

from cloud.compute import hosts, hypervisors
from cloud.compute.models import COMPUTE_BINARY, ComputeNode, Service

from ..microversion import APIVersion
from .bodies import iso_micro


def _is_down(service: Service) -> bool:
    return hosts.host_status(service) in (hosts.HOST_DOWN, hosts.HOST_UNKNOWN)


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
        "state": "down" if _is_down(service) else "up",
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
        "state": "down" if _is_down(service) else "up",
        "status": "disabled" if service.disabled else "enabled",
    }


def hypervisor_detail(node: ComputeNode, version: APIVersion) -> dict:
    body = hypervisor_summary(node, version)
    service = node.service
    body.update(
        {
            "hypervisor_type": node.hypervisor_type,
            "hypervisor_version": node.hypervisor_version,
            "host_ip": node.host_ip,
            "service": {
                "host": service.host,
                "id": str(service.uuid) if version.at_least("2.53") else service.id,
                "disabled_reason": service.disabled_reason,
            },
        }
    )
    if version.at_least("2.88"):
        # Null, as Nova for a driver that cannot tell, until the host has reported its boot time.
        body["uptime"] = hypervisors.uptime_line(node)
        return body
    free_disk = node.local_gb - node.local_gb_used
    body.update(
        {
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
        }
    )
    return body


def with_servers(body: dict, servers: list[tuple[str, str]], version: APIVersion,
                 asked: bool) -> dict:
    """Add the hypervisor's servers as (uuid, instance name): when there are some, or from 2.75
    whenever they were asked for."""
    if servers or (asked and version.at_least("2.75")):
        body["servers"] = [{"name": name, "uuid": uuid} for uuid, name in servers]
    return body
