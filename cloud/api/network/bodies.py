"""The Neutron v2.0 shapes of networks, subnets, ports, routers and floating IPs (security groups:
cloud.network.security_groups.group_body, which the compute side shows too)."""

from __future__ import annotations

from datetime import datetime

from cloud.network import ipam, routers
from cloud.network.models import FloatingIp, Network, Port, Router, Subnet


def iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def owner(project_id: str | None) -> dict:
    return {"tenant_id": project_id or "", "project_id": project_id or ""}


def _stamps(row) -> dict:
    return {"created_at": iso(row.created_at), "updated_at": iso(row.updated_at),
            "revision_number": 0, "tags": []}


def network_body(network: Network) -> dict:
    return {
        "id": str(network.id),
        "name": network.name,
        "status": "ACTIVE",
        "admin_state_up": network.admin_state_up,
        "shared": network.shared,
        "subnets": [str(subnet.id) for subnet in network.subnets.all()],
        **owner(network.project_id),
        "router:external": network.external,
        "mtu": network.mtu,
        "port_security_enabled": network.port_security_enabled,
        "provider:network_type": network.network_type,
        "provider:physical_network": network.physical_network,
        "provider:segmentation_id": network.segmentation_id,
        "availability_zones": ["nova"],
        "availability_zone_hints": [],
        "ipv4_address_scope": None,
        "ipv6_address_scope": None,
        "is_default": False,
        "description": network.description,
        **_stamps(network),
    }


def subnet_body(subnet: Subnet) -> dict:
    return {
        "id": str(subnet.id),
        "name": subnet.name,
        "network_id": str(subnet.network_id),
        **owner(subnet.project_id or subnet.network.project_id),
        "cidr": subnet.cidr,
        "ip_version": subnet.ip_version,
        "gateway_ip": subnet.gateway_ip,
        "enable_dhcp": subnet.enable_dhcp,
        "router:external": subnet.network.external,
        "allocation_pools": ipam.allocation_pools(subnet),
        "dns_nameservers": list(subnet.dns_nameservers or []),
        "host_routes": list(subnet.host_routes or []),
        "ipv6_ra_mode": None,
        "ipv6_address_mode": None,
        "subnetpool_id": None,
        "segment_id": None,
        "service_types": [],
        "description": subnet.description,
        **_stamps(subnet),
    }


def port_body(port: Port) -> dict:
    return {
        "id": str(port.id),
        "name": port.name,
        "network_id": str(port.network_id),
        "device_id": port.device_id,
        "device_owner": port.device_owner,
        "mac_address": port.mac_address,
        "fixed_ips": list(port.fixed_ips),
        "status": port.status,
        "admin_state_up": port.admin_state_up,
        **owner(port.project_id),
        "security_groups": [str(g.id) for g in port.security_groups.all()],
        "port_security_enabled": port.port_security_enabled,
        "allowed_address_pairs": list(port.allowed_address_pairs or []),
        "binding:host_id": port.binding_host,
        "binding:vnic_type": "normal",
        "binding:vif_type": "bridge" if port.binding_host else "unbound",
        "binding:vif_details": {},
        "binding:profile": {},
        "extra_dhcp_opts": [],
        "description": port.description,
        **_stamps(port),
    }


def router_body(router: Router) -> dict:
    return {
        "id": str(router.id),
        "name": router.name,
        "description": router.description,
        **owner(router.project_id),
        "admin_state_up": router.admin_state_up,
        "status": router.status,
        "external_gateway_info": routers.gateway_info(router),
        "routes": list(router.routes or []),
        "distributed": False,
        "ha": False,
        "availability_zones": ["nova"],
        "availability_zone_hints": [],
        "flavor_id": None,
        **_stamps(router),
    }


def floating_ip_body(fip: FloatingIp) -> dict:
    return {
        "id": str(fip.id),
        "floating_ip_address": fip.floating_ip_address,
        "floating_network_id": str(fip.floating_network_id),
        "router_id": str(fip.router_id) if fip.router_id else None,
        "port_id": str(fip.port_id) if fip.port_id else None,
        "fixed_ip_address": fip.fixed_ip_address,
        "status": fip.status,
        "description": fip.description,
        **owner(fip.project_id),
        "port_forwardings": [],
        **_stamps(fip),
    }
