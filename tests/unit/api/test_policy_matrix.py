"""Every API action, asked by every persona: admin, member and reader of project alpha, a member
and a reader of project beta ("other", "outsider"), no token, an expired token. The expected answer
follows from the action's kind:

    public         anyone, token or not
    authenticated  any valid token
    admin          admin only (403 for the others)
    server_admin   an admin-only action on one of alpha's servers: alpha's member and reader 403,
                   beta's people 404 (Nova looks the server up in the caller's project first)
    read           alpha's admin/member/reader; beta's people get 404 (a foreign id is a missing id)
    write          alpha's admin/member; alpha's reader 403; beta's people 404, whatever their role
    create         any member of any project (readers 403): it acts in the caller's own project
    own            quota-style reads of one project: alpha's people; beta's people 403
    self           the user themself or an admin (403 for others)

A table test also checks that every route of the API has a row, so a new endpoint without one fails.
"""

from __future__ import annotations

import functools
import json
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from django.test import Client
from django.urls import get_resolver
from django.utils import timezone

from cloud.api.compute import retired
from cloud.compute.models import (
    Aggregate,
    ComputeNode,
    Flavor,
    Instance,
    InstanceAction,
    KeyPair,
    ServerGroup,
    Service,
)
from cloud.identity.models import Role, Token
from cloud.images.models import Image
from cloud.network.models import Network, Port, Subnet
from cloud.volumes.models import Volume, VolumeHost, VolumeSnapshot, VolumeType
from tests.personas import make_persona

PERSONAS = ["admin", "member", "reader", "other", "outsider", "none", "expired"]
C = "/compute/v2.1"


@dataclass
class Row:
    method: str
    route: str  # Django route under the site root, for the coverage check
    kind: str
    path: str  # with {placeholders} filled from the world
    body: object = None
    version: str = "2.60"


@functools.cache
def _qcow2() -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "d.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "1M"], check=True)
        return path.read_bytes()


ROWS = [
    # identity
    Row("GET", "identity", "public", "/identity"),
    Row("GET", "identity/v3", "public", "/identity/v3"),
    Row("POST", "identity/v3/auth/tokens", "public", "/identity/v3/auth/tokens",
        {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "bob", "password": "correct-horse-battery"}}}}}),
    Row("GET", "identity/v3/auth/tokens", "authenticated", "/identity/v3/auth/tokens"),
    Row("DELETE", "identity/v3/auth/tokens", "authenticated", "/identity/v3/auth/tokens"),
    Row("GET", "identity/v3/auth/projects", "authenticated", "/identity/v3/auth/projects"),
    Row("GET", "identity/v3/domains", "authenticated", "/identity/v3/domains"),
    Row("GET", "identity/v3/domains/<str:domain_id>", "authenticated", "/identity/v3/domains/default"),
    Row("GET", "identity/v3/projects", "admin", "/identity/v3/projects"),
    Row("POST", "identity/v3/projects", "admin", "/identity/v3/projects", {"project": {"name": "p-new"}}),
    Row("GET", "identity/v3/projects/<str:project_id>", "admin", "/identity/v3/projects/{alpha}"),
    Row("PATCH", "identity/v3/projects/<str:project_id>", "admin", "/identity/v3/projects/{gamma}",
        {"project": {"description": "x"}}),
    Row("DELETE", "identity/v3/projects/<str:project_id>", "admin", "/identity/v3/projects/{gamma}"),
    Row("GET", "identity/v3/projects/<str:project_id>/users/<str:user_id>/roles", "admin",
        "/identity/v3/projects/{alpha}/users/{bob}/roles"),
    Row("GET", "identity/v3/projects/<str:project_id>/users/<str:user_id>/roles/<str:role_id>",
        "admin", "/identity/v3/projects/{alpha}/users/{bob}/roles/{member_role}"),
    Row("PUT", "identity/v3/projects/<str:project_id>/users/<str:user_id>/roles/<str:role_id>",
        "admin", "/identity/v3/projects/{gamma}/users/{bob}/roles/{member_role}"),
    Row("DELETE", "identity/v3/projects/<str:project_id>/users/<str:user_id>/roles/<str:role_id>",
        "admin", "/identity/v3/projects/{alpha}/users/{dave}/roles/{member_role}"),
    Row("GET", "identity/v3/users", "admin", "/identity/v3/users"),
    Row("POST", "identity/v3/users", "admin", "/identity/v3/users", {"user": {"name": "u-new"}}),
    Row("GET", "identity/v3/users/<str:user_id>", "self", "/identity/v3/users/{bob}"),
    Row("PATCH", "identity/v3/users/<str:user_id>", "admin", "/identity/v3/users/{dave}",
        {"user": {"email": "d@example.org"}}),
    Row("DELETE", "identity/v3/users/<str:user_id>", "admin", "/identity/v3/users/{dave}"),
    Row("GET", "identity/v3/users/<str:user_id>/projects", "self", "/identity/v3/users/{bob}/projects"),
    Row("GET", "identity/v3/roles", "admin", "/identity/v3/roles"),
    Row("POST", "identity/v3/roles", "admin", "/identity/v3/roles", {"role": {"name": "r-new"}}),
    Row("GET", "identity/v3/roles/<str:role_id>", "admin", "/identity/v3/roles/{extra_role}"),
    Row("PATCH", "identity/v3/roles/<str:role_id>", "admin", "/identity/v3/roles/{extra_role}",
        {"role": {"name": "r-renamed"}}),
    Row("DELETE", "identity/v3/roles/<str:role_id>", "admin", "/identity/v3/roles/{extra_role}"),
    Row("GET", "identity/v3/role_assignments", "admin", "/identity/v3/role_assignments"),
    # compute
    Row("GET", "compute/v2.1", "public", C),
    Row("GET", "compute", "public", "/compute"),
    Row("GET", "compute/v2", "public", "/compute/v2"),
    Row("GET", "compute/v2.1/servers", "authenticated", f"{C}/servers"),
    Row("GET", "compute/v2.1/servers/detail", "authenticated", f"{C}/servers/detail"),
    Row("POST", "compute/v2.1/servers", "create", f"{C}/servers",
        {"server": {"name": "new", "imageRef": "{image}", "flavorRef": "1", "networks": "none"}}),
    Row("GET", "compute/v2.1/servers/<str:server_id>", "read", f"{C}/servers/{{server}}"),
    Row("PUT", "compute/v2.1/servers/<str:server_id>", "write", f"{C}/servers/{{server}}",
        {"server": {"name": "renamed"}}),
    Row("DELETE", "compute/v2.1/servers/<str:server_id>", "write", f"{C}/servers/{{server}}"),
    Row("GET", "compute/v2.1/servers/<str:server_id>/metadata", "read", f"{C}/servers/{{server}}/metadata"),
    Row("POST", "compute/v2.1/servers/<str:server_id>/metadata", "write",
        f"{C}/servers/{{server}}/metadata", {"metadata": {"a": "b"}}),
    Row("PUT", "compute/v2.1/servers/<str:server_id>/metadata", "write",
        f"{C}/servers/{{server}}/metadata", {"metadata": {"a": "b"}}),
    Row("GET", "compute/v2.1/servers/<str:server_id>/metadata/<str:key>", "read",
        f"{C}/servers/{{server}}/metadata/role"),
    Row("PUT", "compute/v2.1/servers/<str:server_id>/metadata/<str:key>", "write",
        f"{C}/servers/{{server}}/metadata/role", {"meta": {"role": "db"}}),
    Row("DELETE", "compute/v2.1/servers/<str:server_id>/metadata/<str:key>", "write",
        f"{C}/servers/{{server}}/metadata/role"),
    Row("GET", "compute/v2.1/servers/<str:server_id>/ips", "read", f"{C}/servers/{{server}}/ips"),
    Row("GET", "compute/v2.1/servers/<str:server_id>/ips/<str:network>", "read",
        f"{C}/servers/{{server}}/ips/private"),
    Row("GET", "compute/v2.1/os-migrations", "admin", f"{C}/os-migrations"),
    Row("GET", "compute/v2.1/os-host-drains", "admin", f"{C}/os-host-drains"),
    Row("POST", "compute/v2.1/os-host-drains", "admin", f"{C}/os-host-drains",
        {"host_drain": {"host": "compute-9"}}),
    Row("GET", "compute/v2.1/os-host-drains/<str:drain_id>", "admin",
        f"{C}/os-host-drains/6b3c5d2e-0000-4000-8000-000000000001"),
    Row("DELETE", "compute/v2.1/os-host-drains/<str:drain_id>", "admin",
        f"{C}/os-host-drains/6b3c5d2e-0000-4000-8000-000000000001"),
    Row("GET", "compute/v2.1/os-host-failures", "admin", f"{C}/os-host-failures"),
    Row("GET", "compute/v2.1/os-host-failures/<str:failure_id>", "admin",
        f"{C}/os-host-failures/6b3c5d2e-0000-4000-8000-000000000001"),
    Row("POST", "compute/v2.1/os-kumo-placement-check", "admin",
        f"{C}/os-kumo-placement-check",
        {"placement_check": {"flavorRef": "1", "imageRef": "{image}"}}),
    Row("GET", "compute/v2.1/servers/<str:server_id>/migrations", "server_admin",
        f"{C}/servers/{{server}}/migrations"),
    Row("GET", "compute/v2.1/servers/<str:server_id>/migrations/<str:migration_id>",
        "server_admin", f"{C}/servers/{{server}}/migrations/1"),
    Row("DELETE", "compute/v2.1/servers/<str:server_id>/migrations/<str:migration_id>",
        "server_admin", f"{C}/servers/{{server}}/migrations/1"),
    Row("POST", "compute/v2.1/servers/<str:server_id>/migrations/<str:migration_id>/action",
        "server_admin", f"{C}/servers/{{server}}/migrations/1/action", {"force_complete": None}),
    Row("GET", "compute/v2.1/servers/<str:server_id>/os-instance-actions", "read",
        f"{C}/servers/{{server}}/os-instance-actions"),
    Row("GET", "compute/v2.1/servers/<str:server_id>/os-instance-actions/<str:request_id>", "read",
        f"{C}/servers/{{server}}/os-instance-actions/{{request_id}}"),
    Row("POST", "compute/v2.1/servers/<str:server_id>/action", "write",
        f"{C}/servers/{{server}}/action", {"lock": None}),
    Row("POST", "compute/v2.1/servers/<str:server_id>/action", "server_admin",
        f"{C}/servers/{{server}}/action", {"os-resetState": {"state": "active"}}),
    Row("POST", "compute/v2.1/servers/<str:server_id>/remote-consoles", "write",
        f"{C}/servers/{{server}}/remote-consoles", {"remote_console": {"protocol": "vnc", "type": "novnc"}}),
    Row("GET", "compute/v2.1/servers/<str:server_id>/tags", "read", f"{C}/servers/{{server}}/tags"),
    Row("PUT", "compute/v2.1/servers/<str:server_id>/tags", "write", f"{C}/servers/{{server}}/tags",
        {"tags": ["blue"]}),
    Row("DELETE", "compute/v2.1/servers/<str:server_id>/tags", "write",
        f"{C}/servers/{{server}}/tags"),
    Row("GET", "compute/v2.1/servers/<str:server_id>/tags/<str:tag>", "read",
        f"{C}/servers/{{server}}/tags/blue"),
    Row("PUT", "compute/v2.1/servers/<str:server_id>/tags/<str:tag>", "write",
        f"{C}/servers/{{server}}/tags/blue"),
    Row("DELETE", "compute/v2.1/servers/<str:server_id>/tags/<str:tag>", "write",
        f"{C}/servers/{{server}}/tags/blue"),
    Row("GET", "compute/v2.1/servers/<str:server_id>/os-interface", "read",
        f"{C}/servers/{{server}}/os-interface"),
    Row("GET", "compute/v2.1/servers/<str:server_id>/os-interface/<str:port_id>", "read",
        f"{C}/servers/{{server}}/os-interface/{{port}}"),
    Row("POST", "compute/v2.1/servers/<str:server_id>/os-interface", "write",
        f"{C}/servers/{{server}}/os-interface", {"interfaceAttachment": {"net_id": "{own_network}"}}),
    Row("DELETE", "compute/v2.1/servers/<str:server_id>/os-interface/<str:port_id>", "write",
        f"{C}/servers/{{server}}/os-interface/{{port}}"),
    # rescue, shelve, backups, crash dumps
    *(Row("POST", "compute/v2.1/servers/<str:server_id>/action", "write",
          f"{C}/servers/{{server}}/action", body) for body in (
        {"rescue": None}, {"unrescue": None}, {"shelve": None}, {"unshelve": None},
        {"createBackup": {"name": "b", "backup_type": "daily", "rotation": 1}},
        {"trigger_crash_dump": None}, {"restore": None}, {"forceDelete": None})),
    Row("POST", "compute/v2.1/servers/<str:server_id>/action", "server_admin",
        f"{C}/servers/{{server}}/action", {"injectNetworkInfo": None}),
    Row("POST", "compute/v2.1/servers/<str:server_id>/action", "server_admin",
        f"{C}/servers/{{server}}/action", {"shelveOffload": None}),
    Row("POST", "compute/v2.1/servers/<str:server_id>/action", "server_admin",
        f"{C}/servers/{{server}}/action", {"evacuate": {"onSharedStorage": False}}),
    Row("POST", "compute/v2.1/servers/<str:server_id>/action", "write",
        f"{C}/servers/{{server}}/action", {"addFloatingIp": {"address": "203.0.113.9"}},
        version="2.43"),
    Row("GET", "compute/v2.1/servers/<str:server_id>/os-security-groups", "read",
        f"{C}/servers/{{server}}/os-security-groups"),
    Row("POST", "compute/v2.1/servers/<str:server_id>/action", "write",
        f"{C}/servers/{{server}}/action", {"addSecurityGroup": {"name": "default"}}),
    Row("POST", "compute/v2.1/servers/<str:server_id>/action", "write",
        f"{C}/servers/{{server}}/action", {"removeSecurityGroup": {"name": "default"}}),
    Row("GET", "compute/v2.1/servers/<str:server_id>/os-server-password", "read",
        f"{C}/servers/{{server}}/os-server-password"),
    Row("DELETE", "compute/v2.1/servers/<str:server_id>/os-server-password", "write",
        f"{C}/servers/{{server}}/os-server-password"),
    Row("GET", "compute/v2.1/os-simple-tenant-usage", "admin", f"{C}/os-simple-tenant-usage"),
    Row("GET", "compute/v2.1/os-simple-tenant-usage/<str:project_id>", "own",
        f"{C}/os-simple-tenant-usage/{{alpha}}"),
    Row("POST", "compute/v2.1/os-server-external-events", "admin",
        f"{C}/os-server-external-events",
        {"events": [{"name": "network-changed", "server_uuid": "{server}"}]}),
    Row("PUT", "compute/v2.1/flavors/<str:flavor_id>", "admin", f"{C}/flavors/1",
        {"flavor": {"description": "small"}}),
    Row("GET", "compute/v2.1/flavors/<str:flavor_id>/os-flavor-access", "admin",
        f"{C}/flavors/2/os-flavor-access"),
    Row("POST", "compute/v2.1/flavors/<str:flavor_id>/action", "admin",
        f"{C}/flavors/2/action", {"addTenantAccess": {"tenant": "{gamma}"}}),
    Row("GET", "compute/v2.1/os-hypervisors/<str:node_id>/uptime", "admin",
        f"{C}/os-hypervisors/00000000-0000-0000-0000-000000000000/uptime"),
    Row("GET", "compute/v2.1/os-hypervisors/<str:pattern>/search", "admin",
        f"{C}/os-hypervisors/compute/search", version="2.52"),
    Row("GET", "compute/v2.1/os-hypervisors/<str:pattern>/servers", "admin",
        f"{C}/os-hypervisors/compute/servers", version="2.52"),
    Row("GET", "compute/v2.1/os-volumes_boot", "authenticated", f"{C}/os-volumes_boot"),
    Row("GET", "compute/v2.1/os-volumes_boot/detail", "authenticated",
        f"{C}/os-volumes_boot/detail"),
    Row("POST", "compute/v2.1/os-volumes_boot", "create", f"{C}/os-volumes_boot",
        {"server": {"name": "new", "imageRef": "{image}", "flavorRef": "1", "networks": "none"}}),
    Row("GET", "compute/v2.1/os-volumes_boot/<str:server_id>", "read",
        f"{C}/os-volumes_boot/{{server}}"),
    Row("PUT", "compute/v2.1/os-volumes_boot/<str:server_id>", "write",
        f"{C}/os-volumes_boot/{{server}}", {"server": {"name": "renamed"}}),
    Row("DELETE", "compute/v2.1/os-volumes_boot/<str:server_id>", "write",
        f"{C}/os-volumes_boot/{{server}}"),
    Row("POST", "compute/v2.1/os-volumes_boot/<str:server_id>/action", "write",
        f"{C}/os-volumes_boot/{{server}}/action", {"lock": None}),
    Row("GET", "compute/v2.1/servers/<str:server_id>/os-volume_attachments", "read",
        f"{C}/servers/{{server}}/os-volume_attachments"),
    Row("POST", "compute/v2.1/servers/<str:server_id>/os-volume_attachments", "write",
        f"{C}/servers/{{server}}/os-volume_attachments",
        {"volumeAttachment": {"volumeId": "11111111-1111-1111-1111-111111111111"}}),
    Row("GET", "compute/v2.1/servers/<str:server_id>/os-volume_attachments/<str:volume_id>",
        "read", f"{C}/servers/{{server}}/os-volume_attachments/v1"),
    Row("PUT", "compute/v2.1/servers/<str:server_id>/os-volume_attachments/<str:volume_id>",
        "server_admin", f"{C}/servers/{{server}}/os-volume_attachments/v1",
        {"volumeAttachment": {"volumeId": "11111111-1111-1111-1111-111111111111"}}),
    Row("DELETE", "compute/v2.1/servers/<str:server_id>/os-volume_attachments/<str:volume_id>",
        "write", f"{C}/servers/{{server}}/os-volume_attachments/v1"),
    Row("GET", "compute/v2.1/os-console-auth-tokens/<str:token>", "admin",
        f"{C}/os-console-auth-tokens/no-such-token"),
    Row("GET", "compute/v2.1/os-quota-class-sets/<str:class_name>", "admin",
        f"{C}/os-quota-class-sets/default"),
    Row("PUT", "compute/v2.1/os-quota-class-sets/<str:class_name>", "admin",
        f"{C}/os-quota-class-sets/default", {"quota_class_set": {"instances": 20}}),
    Row("GET", "compute/v2.1/os-hosts", "admin", f"{C}/os-hosts", version="2.42"),
    Row("GET", "compute/v2.1/os-hosts/<str:host>", "admin", f"{C}/os-hosts/compute-1",
        version="2.42"),
    Row("PUT", "compute/v2.1/os-hosts/<str:host>", "admin", f"{C}/os-hosts/nowhere",
        {"status": "enable"}, version="2.42"),
    Row("GET", "compute/v2.1/os-hosts/<str:host>/reboot", "admin",
        f"{C}/os-hosts/nowhere/reboot", version="2.42"),
    Row("GET", "compute/v2.1/os-hosts/<str:host>/shutdown", "admin",
        f"{C}/os-hosts/nowhere/shutdown", version="2.42"),
    Row("GET", "compute/v2.1/os-hosts/<str:host>/startup", "admin",
        f"{C}/os-hosts/nowhere/startup", version="2.42"),
    Row("GET", "compute/v2.1/os-instance_usage_audit_log", "admin",
        f"{C}/os-instance_usage_audit_log"),
    Row("GET", "compute/v2.1/os-instance_usage_audit_log/<str:before>", "admin",
        f"{C}/os-instance_usage_audit_log/2026-01-01%2000:00:00"),
    Row("GET", "compute/v2.1/os-networks", "authenticated", f"{C}/os-networks", version="2.35"),
    Row("GET", "compute/v2.1/os-networks/<str:network_id>", "read",
        f"{C}/os-networks/{{own_network}}", version="2.35"),
    Row("GET", "compute/v2.1/os-tenant-networks", "authenticated", f"{C}/os-tenant-networks",
        version="2.35"),
    Row("GET", "compute/v2.1/os-tenant-networks/<str:network_id>", "read",
        f"{C}/os-tenant-networks/{{own_network}}", version="2.35"),
    Row("GET", "compute/v2.1/os-floating-ip-pools", "authenticated",
        f"{C}/os-floating-ip-pools", version="2.35"),
    Row("GET", "compute/v2.1/os-floating-ips", "authenticated", f"{C}/os-floating-ips",
        version="2.35"),
    Row("GET", "compute/v2.1/os-floating-ips/<str:floating_ip_id>", "authenticated",
        f"{C}/os-floating-ips/1", version="2.35"),
    # allocating goes through the network's floating IPs: members, readers 403 (no pool here: 404)
    Row("POST", "compute/v2.1/os-floating-ips", "create", f"{C}/os-floating-ips", {},
        version="2.35"),
    Row("DELETE", "compute/v2.1/os-floating-ips/<str:floating_ip_id>", "authenticated",
        f"{C}/os-floating-ips/1", version="2.35"),
    Row("GET", "compute/v2.1/os-security-groups", "authenticated", f"{C}/os-security-groups",
        version="2.35"),
    # writes go through the network's security groups: members of a project, readers 403
    Row("POST", "compute/v2.1/os-security-groups", "create", f"{C}/os-security-groups",
        {"security_group": {"name": "web"}}, version="2.35"),
    *(Row(method, "compute/v2.1/os-security-groups/<str:group_id>", "authenticated",
          f"{C}/os-security-groups/g1", version="2.35") for method in ("GET", "PUT", "DELETE")),
    Row("POST", "compute/v2.1/os-security-group-rules", "authenticated",
        f"{C}/os-security-group-rules", {}, version="2.35"),
    Row("DELETE", "compute/v2.1/os-security-group-rules/<str:rule_id>", "authenticated",
        f"{C}/os-security-group-rules/r1", version="2.35"),
    *(Row(method, f"compute/v2.1/{kind}", "authenticated", f"{C}/{kind}", version="2.35")
      for kind in ("os-volumes", "os-snapshots") for method in ("GET", "POST")),
    *(Row("GET", f"compute/v2.1/{kind}/detail", "authenticated", f"{C}/{kind}/detail",
          version="2.35") for kind in ("os-volumes", "os-snapshots")),
    *(Row(method, f"compute/v2.1/{kind}/<str:item_id>", "authenticated", f"{C}/{kind}/v1",
          version="2.35")
      for kind in ("os-volumes", "os-snapshots") for method in ("GET", "DELETE")),
    Row("GET", "compute/v2.1/os-baremetal-nodes", "admin", f"{C}/os-baremetal-nodes",
        version="2.35"),
    Row("GET", "compute/v2.1/os-baremetal-nodes/<str:node_id>", "admin",
        f"{C}/os-baremetal-nodes/n1", version="2.35"),
    Row("POST", "compute/v2.1/os-assisted-volume-snapshots", "admin",
        f"{C}/os-assisted-volume-snapshots", {}),
    Row("DELETE", "compute/v2.1/os-assisted-volume-snapshots/<str:snapshot_id>", "admin",
        f"{C}/os-assisted-volume-snapshots/s1"),
    Row("GET", "compute/v2.1/flavors", "authenticated", f"{C}/flavors"),
    Row("GET", "compute/v2.1/flavors/detail", "authenticated", f"{C}/flavors/detail"),
    Row("GET", "compute/v2.1/flavors/<str:flavor_id>", "authenticated", f"{C}/flavors/1"),
    Row("POST", "compute/v2.1/flavors", "admin", f"{C}/flavors",
        {"flavor": {"name": "f-new", "ram": 64, "vcpus": 1, "disk": 0}}),
    Row("DELETE", "compute/v2.1/flavors/<str:flavor_id>", "admin", f"{C}/flavors/2"),
    Row("GET", "compute/v2.1/flavors/<str:flavor_id>/os-extra_specs", "authenticated",
        f"{C}/flavors/1/os-extra_specs"),
    Row("POST", "compute/v2.1/flavors/<str:flavor_id>/os-extra_specs", "admin",
        f"{C}/flavors/1/os-extra_specs", {"extra_specs": {"hw:cpu_policy": "shared"}}),
    Row("GET", "compute/v2.1/flavors/<str:flavor_id>/os-extra_specs/<str:key>", "authenticated",
        f"{C}/flavors/1/os-extra_specs/quota:cpu_shares"),
    Row("PUT", "compute/v2.1/flavors/<str:flavor_id>/os-extra_specs/<str:key>", "admin",
        f"{C}/flavors/1/os-extra_specs/quota:cpu_shares", {"quota:cpu_shares": "2048"}),
    Row("DELETE", "compute/v2.1/flavors/<str:flavor_id>/os-extra_specs/<str:key>", "admin",
        f"{C}/flavors/1/os-extra_specs/quota:cpu_shares"),
    Row("GET", "compute/v2.1/os-services", "admin", f"{C}/os-services"),
    Row("PUT", "compute/v2.1/os-services/<str:service_id>", "admin",
        f"{C}/os-services/{{service}}", {"status": "disabled", "disabled_reason": "test"}),
    Row("DELETE", "compute/v2.1/os-services/<str:service_id>", "admin", f"{C}/os-services/{{idle_service}}"),
    Row("GET", "compute/v2.1/os-hypervisors", "admin", f"{C}/os-hypervisors"),
    Row("GET", "compute/v2.1/os-hypervisors/detail", "admin", f"{C}/os-hypervisors/detail"),
    Row("GET", "compute/v2.1/os-hypervisors/statistics", "admin", f"{C}/os-hypervisors/statistics"),
    Row("GET", "compute/v2.1/os-hypervisors/<str:node_id>", "admin", f"{C}/os-hypervisors/{{node}}"),
    Row("GET", "compute/v2.1/os-keypairs", "authenticated", f"{C}/os-keypairs"),
    Row("POST", "compute/v2.1/os-keypairs", "authenticated", f"{C}/os-keypairs",
        {"keypair": {"name": "kp-new"}}),
    Row("GET", "compute/v2.1/limits", "authenticated", f"{C}/limits"),
    Row("GET", "compute/v2.1/os-quota-sets/<str:project_id>", "own", f"{C}/os-quota-sets/{{alpha}}"),
    Row("GET", "compute/v2.1/os-quota-sets/<str:project_id>/detail", "own",
        f"{C}/os-quota-sets/{{alpha}}/detail"),
    Row("GET", "compute/v2.1/os-quota-sets/<str:project_id>/defaults", "authenticated",
        f"{C}/os-quota-sets/{{alpha}}/defaults"),
    Row("PUT", "compute/v2.1/os-quota-sets/<str:project_id>", "admin", f"{C}/os-quota-sets/{{alpha}}",
        {"quota_set": {"instances": 20}}),
    Row("DELETE", "compute/v2.1/os-quota-sets/<str:project_id>", "admin", f"{C}/os-quota-sets/{{alpha}}"),
    Row("GET", "compute/v2.1/os-server-groups", "authenticated", f"{C}/os-server-groups"),
    Row("POST", "compute/v2.1/os-server-groups", "create", f"{C}/os-server-groups",
        {"server_group": {"name": "g-new", "policies": ["affinity"]}}),
    Row("GET", "compute/v2.1/os-server-groups/<str:group_id>", "read", f"{C}/os-server-groups/{{group}}"),
    Row("DELETE", "compute/v2.1/os-server-groups/<str:group_id>", "write", f"{C}/os-server-groups/{{group}}"),
    Row("GET", "compute/v2.1/os-availability-zone", "authenticated", f"{C}/os-availability-zone"),
    Row("GET", "compute/v2.1/os-availability-zone/detail", "admin", f"{C}/os-availability-zone/detail"),
    Row("GET", "compute/v2.1/os-aggregates", "admin", f"{C}/os-aggregates"),
    Row("POST", "compute/v2.1/os-aggregates", "admin", f"{C}/os-aggregates", {"aggregate": {"name": "agg-new"}}),
    Row("GET", "compute/v2.1/os-aggregates/<str:aggregate_id>", "admin", f"{C}/os-aggregates/{{aggregate}}"),
    Row("PUT", "compute/v2.1/os-aggregates/<str:aggregate_id>", "admin", f"{C}/os-aggregates/{{aggregate}}",
        {"aggregate": {"name": "agg-renamed"}}),
    Row("DELETE", "compute/v2.1/os-aggregates/<str:aggregate_id>", "admin", f"{C}/os-aggregates/{{aggregate}}"),
    Row("POST", "compute/v2.1/os-aggregates/<str:aggregate_id>/action", "admin",
        f"{C}/os-aggregates/{{aggregate}}/action", {"set_metadata": {"metadata": {"k": "v"}}}),
    Row("GET", "compute/v2.1/images", "authenticated", f"{C}/images", version="2.1"),
    Row("GET", "compute/v2.1/images/detail", "authenticated", f"{C}/images/detail", version="2.1"),
    Row("GET", "compute/v2.1/images/<str:image_id>", "read", f"{C}/images/{{image}}", version="2.1"),
    Row("DELETE", "compute/v2.1/images/<str:image_id>", "write", f"{C}/images/{{image}}",
        version="2.1"),
    Row("GET", "compute/v2.1/images/<str:image_id>/metadata", "read",
        f"{C}/images/{{image}}/metadata", version="2.38"),
    *(Row(method, "compute/v2.1/images/<str:image_id>/metadata", "write",
          f"{C}/images/{{image}}/metadata", {"metadata": {"k": "v"}}, version="2.38")
      for method in ("POST", "PUT")),
    Row("GET", "compute/v2.1/images/<str:image_id>/metadata/<str:key>", "read",
        f"{C}/images/{{image}}/metadata/k", version="2.38"),
    Row("PUT", "compute/v2.1/images/<str:image_id>/metadata/<str:key>", "write",
        f"{C}/images/{{image}}/metadata/k", {"meta": {"k": "v"}}, version="2.38"),
    Row("DELETE", "compute/v2.1/images/<str:image_id>/metadata/<str:key>", "write",
        f"{C}/images/{{image}}/metadata/k", version="2.38"),
    # image
    Row("GET", "image", "public", "/image"),
    Row("GET", "image/v2", "public", "/image/v2"),
    Row("GET", "image/v2/images", "authenticated", "/image/v2/images"),
    Row("POST", "image/v2/images", "create", "/image/v2/images",
        {"name": "img-new", "disk_format": "qcow2", "container_format": "bare"}),
    Row("GET", "image/v2/images/<str:image_id>", "read", "/image/v2/images/{image}"),
    Row("PATCH", "image/v2/images/<str:image_id>", "write", "/image/v2/images/{image}",
        [{"op": "replace", "path": "/name", "value": "renamed"}]),
    Row("DELETE", "image/v2/images/<str:image_id>", "write", "/image/v2/images/{image}"),
    Row("POST", "image/v2/images/<str:image_id>/actions/deactivate", "write",
        "/image/v2/images/{image}/actions/deactivate"),
    Row("POST", "image/v2/images/<str:image_id>/actions/reactivate", "write",
        "/image/v2/images/{image}/actions/reactivate"),
    Row("GET", "image/v2/images/<str:image_id>/file", "read", "/image/v2/images/{image}/file"),
    Row("PUT", "image/v2/images/<str:image_id>/file", "write", "/image/v2/images/{queued_image}/file",
        "QCOW2"),
    Row("GET", "image/v2/schemas/image", "authenticated", "/image/v2/schemas/image"),
    Row("GET", "image/v2/schemas/images", "authenticated", "/image/v2/schemas/images"),
    # network
    Row("GET", "network", "public", "/network"),
    Row("GET", "network/v2.0", "public", "/network/v2.0"),
    Row("GET", "network/v2.0/networks", "authenticated", "/network/v2.0/networks"),
    Row("GET", "network/v2.0/networks/<str:network_id>", "read", "/network/v2.0/networks/{own_network}"),
    Row("GET", "network/v2.0/subnets", "authenticated", "/network/v2.0/subnets"),
    Row("GET", "network/v2.0/subnets/<str:subnet_id>", "read", "/network/v2.0/subnets/{own_subnet}"),
    Row("GET", "network/v2.0/ports", "authenticated", "/network/v2.0/ports"),
    Row("GET", "network/v2.0/ports/<str:port_id>", "read", "/network/v2.0/ports/{port}"),
    Row("GET", "network/v2.0/quotas/<str:project_id>", "own", "/network/v2.0/quotas/{alpha}"),
    Row("DELETE", "network/v2.0/quotas/<str:project_id>", "admin", "/network/v2.0/quotas/{alpha}"),
    Row("GET", "network/v2.0/quotas/<str:project_id>/details", "own", "/network/v2.0/quotas/{alpha}/details"),
    Row("GET", "network/v2.0/quotas/<str:project_id>/default", "own", "/network/v2.0/quotas/{alpha}/default"),
    Row("GET", "network/v2.0/floatingips", "authenticated", "/network/v2.0/floatingips"),
    Row("GET", "network/v2.0/security-groups", "authenticated", "/network/v2.0/security-groups"),
    Row("GET", "network/v2.0/extensions", "authenticated", "/network/v2.0/extensions"),
    Row("GET", "network/v2.0/extensions/<str:alias>", "authenticated", "/network/v2.0/extensions/quotas"),
]

# Routes whose every case needs a resource of the caller's own that a shared table cannot give
# (per-user key pairs, the caller's own floating IP or security group) are covered by their own tests.
COVERED_ELSEWHERE = {
    ("GET", "compute/v2.1/os-keypairs/<str:name>"): "tests/unit/api/test_keypairs.py",
    ("DELETE", "compute/v2.1/os-keypairs/<str:name>"): "tests/unit/api/test_keypairs.py",
    ("GET", "network/v2.0/floatingips/<str:floatingip_id>"): "tests/unit/api/test_network.py",
    # 409 for an admin (no host has sent the server statistics here), which the table reads as a
    # failure; test_server_diagnostics.py asks with statistics in place
    ("GET", "compute/v2.1/servers/<str:server_id>/diagnostics"):
        "tests/unit/api/test_server_diagnostics.py",
    # above the microversion this table asks at
    ("GET", "compute/v2.1/servers/<str:server_id>/topology"):
        "tests/unit/api/test_server_resources.py",
    ("GET", "compute/v2.1/servers/<str:server_id>/shares"):
        "tests/unit/api/test_server_resources.py",
    ("POST", "compute/v2.1/servers/<str:server_id>/shares"):
        "tests/unit/api/test_server_resources.py",
    ("GET", "compute/v2.1/servers/<str:server_id>/shares/<str:share_id>"):
        "tests/unit/api/test_server_resources.py",
    ("DELETE", "compute/v2.1/servers/<str:server_id>/shares/<str:share_id>"):
        "tests/unit/api/test_server_resources.py",
    ("GET", "network/v2.0/security-groups/<str:group_id>"): "tests/unit/api/test_network.py",
    ("DELETE", "network/v2.0/security-groups/<str:group_id>"): "tests/unit/api/test_network.py",
}

# image sharing, tags and import (issue 12)
ROWS += [
    Row("GET", "image/v2/images/<str:image_id>/members", "read", "/image/v2/images/{image}/members"),
    Row("POST", "image/v2/images/<str:image_id>/members", "write", "/image/v2/images/{image}/members",
        {"member": "{gamma}"}),
    Row("GET", "image/v2/images/<str:image_id>/members/<str:member_id>", "read",
        "/image/v2/images/{image}/members/{gamma}"),
    Row("DELETE", "image/v2/images/<str:image_id>/members/<str:member_id>", "write",
        "/image/v2/images/{image}/members/{gamma}"),
    Row("PUT", "image/v2/images/<str:image_id>/tags/<str:tag>", "write",
        "/image/v2/images/{image}/tags/blue"),
    Row("DELETE", "image/v2/images/<str:image_id>/tags/<str:tag>", "write",
        "/image/v2/images/{image}/tags/blue"),
    Row("GET", "image/v2/schemas/member", "authenticated", "/image/v2/schemas/member"),
    Row("GET", "image/v2/schemas/members", "authenticated", "/image/v2/schemas/members"),
    Row("GET", "image/v2/info/import", "authenticated", "/image/v2/info/import"),
    Row("PUT", "image/v2/images/<str:image_id>/stage", "write", "/image/v2/images/{queued_image}/stage",
        "QCOW2"),
    Row("POST", "image/v2/images/<str:image_id>/import", "write", "/image/v2/images/{image}/import",
        {"method": {"name": "glance-direct"}}),
    Row("GET", "image/v2/images/<str:image_id>/tasks", "read", "/image/v2/images/{image}/tasks"),
    Row("GET", "image/v2/tasks", "admin", "/image/v2/tasks"),
    Row("POST", "image/v2/tasks", "admin", "/image/v2/tasks", {"type": "import", "input": {
        "import_from": "http://192.0.2.1/x.qcow2", "image_properties": {"name": "t"}}}),
    Row("GET", "image/v2/tasks/<str:task_id>", "admin", "/image/v2/tasks/{gamma}"),
]
# The member's own answer needs an image shared with the caller's project.
COVERED_ELSEWHERE[("PUT", "image/v2/images/<str:image_id>/members/<str:member_id>")] = (
    "tests/unit/api/test_image_members.py")

# identity for automation (issue 12): the catalog, groups, application and EC2 credentials
_G = "identity/v3/groups/<str:group_id>"
_PG = "identity/v3/projects/<str:project_id>/groups/<str:group_id>/roles"
_AC = "identity/v3/users/<str:user_id>/application_credentials"
_EC2 = "identity/v3/users/<str:user_id>/credentials/OS-EC2"
ROWS += [
    Row("GET", "identity/v3/auth/catalog", "authenticated", "/identity/v3/auth/catalog"),
    Row("GET", "identity/v3/regions", "authenticated", "/identity/v3/regions"),
    Row("POST", "identity/v3/regions", "admin", "/identity/v3/regions", {"region": {"id": "R2"}}),
    Row("GET", "identity/v3/regions/<str:region_id>", "authenticated", "/identity/v3/regions/R9"),
    Row("PUT", "identity/v3/regions/<str:region_id>", "admin", "/identity/v3/regions/R3",
        {"region": {}}),
    Row("PATCH", "identity/v3/regions/<str:region_id>", "admin", "/identity/v3/regions/R9",
        {"region": {"description": "x"}}),
    Row("DELETE", "identity/v3/regions/<str:region_id>", "admin", "/identity/v3/regions/R9"),
    Row("GET", "identity/v3/services", "authenticated", "/identity/v3/services"),
    Row("POST", "identity/v3/services", "admin", "/identity/v3/services",
        {"service": {"type": "object-store"}}),
    Row("GET", "identity/v3/services/<str:service_id>", "authenticated", "/identity/v3/services/s9"),
    Row("PATCH", "identity/v3/services/<str:service_id>", "admin", "/identity/v3/services/s9",
        {"service": {"name": "x"}}),
    Row("DELETE", "identity/v3/services/<str:service_id>", "admin", "/identity/v3/services/s9"),
    Row("GET", "identity/v3/endpoints", "authenticated", "/identity/v3/endpoints"),
    Row("POST", "identity/v3/endpoints", "admin", "/identity/v3/endpoints", {"endpoint": {
        "service_id": "s9", "interface": "public", "url": "http://x"}}),
    Row("GET", "identity/v3/endpoints/<str:endpoint_id>", "authenticated",
        "/identity/v3/endpoints/e9"),
    Row("PATCH", "identity/v3/endpoints/<str:endpoint_id>", "admin", "/identity/v3/endpoints/e9",
        {"endpoint": {"enabled": False}}),
    Row("DELETE", "identity/v3/endpoints/<str:endpoint_id>", "admin", "/identity/v3/endpoints/e9"),
    Row("GET", "identity/v3/groups", "admin", "/identity/v3/groups"),
    Row("POST", "identity/v3/groups", "admin", "/identity/v3/groups", {"group": {"name": "g-new"}}),
    Row("GET", _G, "admin", "/identity/v3/groups/g9"),
    Row("PATCH", _G, "admin", "/identity/v3/groups/g9", {"group": {"name": "x"}}),
    Row("DELETE", _G, "admin", "/identity/v3/groups/g9"),
    Row("GET", f"{_G}/users", "admin", "/identity/v3/groups/g9/users"),
    Row("GET", f"{_G}/users/<str:user_id>", "admin", "/identity/v3/groups/g9/users/{bob}"),
    Row("PUT", f"{_G}/users/<str:user_id>", "admin", "/identity/v3/groups/g9/users/{bob}"),
    Row("DELETE", f"{_G}/users/<str:user_id>", "admin", "/identity/v3/groups/g9/users/{bob}"),
    Row("GET", "identity/v3/users/<str:user_id>/groups", "self", "/identity/v3/users/{bob}/groups"),
    Row("GET", _PG, "admin", "/identity/v3/projects/{alpha}/groups/g9/roles"),
    Row("GET", f"{_PG}/<str:role_id>", "admin",
        "/identity/v3/projects/{alpha}/groups/g9/roles/{member_role}"),
    Row("PUT", f"{_PG}/<str:role_id>", "admin",
        "/identity/v3/projects/{alpha}/groups/g9/roles/{member_role}"),
    Row("DELETE", f"{_PG}/<str:role_id>", "admin",
        "/identity/v3/projects/{alpha}/groups/g9/roles/{member_role}"),
    Row("GET", _AC, "self", "/identity/v3/users/{bob}/application_credentials"),
    Row("GET", f"{_AC}/<str:credential_id>", "self",
        "/identity/v3/users/{bob}/application_credentials/ac9"),
    Row("DELETE", f"{_AC}/<str:credential_id>", "self",
        "/identity/v3/users/{bob}/application_credentials/ac9"),
    Row("GET", "identity/v3/credentials", "authenticated", "/identity/v3/credentials"),
    Row("POST", "identity/v3/credentials", "self", "/identity/v3/credentials", {"credential": {
        "type": "totp", "user_id": "{bob}", "blob": "x"}}),
    Row("GET", "identity/v3/credentials/<str:credential_id>", "authenticated",
        "/identity/v3/credentials/c9"),
    Row("PATCH", "identity/v3/credentials/<str:credential_id>", "authenticated",
        "/identity/v3/credentials/c9", {"credential": {"blob": "y"}}),
    Row("DELETE", "identity/v3/credentials/<str:credential_id>", "authenticated",
        "/identity/v3/credentials/c9"),
    Row("GET", _EC2, "self", "/identity/v3/users/{bob}/credentials/OS-EC2"),
    Row("POST", _EC2, "self", "/identity/v3/users/{bob}/credentials/OS-EC2",
        {"tenant_id": "{alpha}"}),
    Row("GET", f"{_EC2}/<str:access>", "self", "/identity/v3/users/{bob}/credentials/OS-EC2/a9"),
    Row("DELETE", f"{_EC2}/<str:access>", "self",
        "/identity/v3/users/{bob}/credentials/OS-EC2/a9"),
]
# Only the user themself makes application credentials (an admin may not, for another user).
COVERED_ELSEWHERE[("POST", _AC)] = "tests/unit/api/test_identity_credentials.py"

# Nova's retired APIs answer 410 Gone to anyone with a token (tests/unit/api/test_legacy_apis.py);
# the aggregate image cache is above this table's microversion (tests/unit/api/test_legacy_apis.py).
COVERED_ELSEWHERE.update({
    (method, "compute/v2.1" + route): "tests/unit/api/test_legacy_apis.py"
    for route in retired.RETIRED_ROUTES for method in ("GET", "POST", "PUT", "DELETE")
})
COVERED_ELSEWHERE[("POST", "compute/v2.1/os-aggregates/<str:aggregate_id>/images")] = (
    "tests/unit/api/test_legacy_apis.py")


# adding compute hosts (cloud/enrollment): a join token for a host, admins only; the join
# needs no Keystone token (its own token is the authentication, refused with 401 when bad)
ROWS.append(Row("POST", "compute/v2.1/os-host-tokens", "admin", f"{C}/os-host-tokens",
                {"host_token": {"host": "compute-9"}}))
COVERED_ELSEWHERE[("POST", "compute/v2.1/os-host-joins")] = (
    "tests/unit/enrollment/test_host_tokens_api.py")

# network writes (issue 14); the rows that need a resource of the caller's own (a security
# group, a router, a floating IP on an external network) are in tests/unit/api/test_network_*.py
_N = "network/v2.0"
ROWS += [
    Row("POST", f"{_N}/networks", "create", f"/{_N}/networks", {"network": {"name": "n"}}),
    Row("PUT", f"{_N}/networks/<str:network_id>", "write", f"/{_N}/networks/{{own_network}}",
        {"network": {"name": "renamed"}}),
    Row("DELETE", f"{_N}/networks/<str:network_id>", "write", f"/{_N}/networks/{{own_network}}"),
    Row("POST", f"{_N}/subnets", "write", f"/{_N}/subnets", {"subnet": {
        "network_id": "{own_network}", "cidr": "10.9.0.0/24", "ip_version": 4}}),
    Row("PUT", f"{_N}/subnets/<str:subnet_id>", "write", f"/{_N}/subnets/{{own_subnet}}",
        {"subnet": {"name": "renamed"}}),
    Row("DELETE", f"{_N}/subnets/<str:subnet_id>", "write", f"/{_N}/subnets/{{own_subnet}}"),
    Row("POST", f"{_N}/ports", "write", f"/{_N}/ports", {"port": {"network_id": "{own_network}"}}),
    Row("PUT", f"{_N}/ports/<str:port_id>", "write", f"/{_N}/ports/{{port}}",
        {"port": {"name": "renamed"}}),
    Row("DELETE", f"{_N}/ports/<str:port_id>", "write", f"/{_N}/ports/{{port}}"),
    Row("POST", f"{_N}/security-groups", "create", f"/{_N}/security-groups",
        {"security_group": {"name": "web"}}),
    Row("GET", f"{_N}/security-group-rules", "authenticated", f"/{_N}/security-group-rules"),
    Row("GET", f"{_N}/routers", "authenticated", f"/{_N}/routers"),
    Row("POST", f"{_N}/routers", "create", f"/{_N}/routers", {"router": {"name": "r"}}),
    Row("GET", f"{_N}/quotas", "admin", f"/{_N}/quotas"),
    Row("PUT", f"{_N}/quotas/<str:project_id>", "admin", f"/{_N}/quotas/{{alpha}}",
        {"quota": {"network": 5}}),
    # a non-admin's agent list is empty and every agent missing to them (Neutron's policy)
    Row("GET", f"{_N}/agents", "authenticated", f"/{_N}/agents"),
    Row("GET", f"{_N}/agents/<str:agent_id>", "authenticated", f"/{_N}/agents/missing"),
]
COVERED_ELSEWHERE.update({
    ("PUT", f"{_N}/security-groups/<str:group_id>"): "tests/unit/api/test_network_security_groups.py",
    ("POST", f"{_N}/security-group-rules"): "tests/unit/api/test_network_security_groups.py",
    ("GET", f"{_N}/security-group-rules/<str:rule_id>"):
        "tests/unit/api/test_network_security_groups.py",
    ("DELETE", f"{_N}/security-group-rules/<str:rule_id>"):
        "tests/unit/api/test_network_security_groups.py",
    ("GET", f"{_N}/routers/<str:router_id>"): "tests/unit/api/test_network_routers.py",
    ("PUT", f"{_N}/routers/<str:router_id>"): "tests/unit/api/test_network_routers.py",
    ("DELETE", f"{_N}/routers/<str:router_id>"): "tests/unit/api/test_network_routers.py",
    ("PUT", f"{_N}/routers/<str:router_id>/add_router_interface"):
        "tests/unit/api/test_network_routers.py",
    ("PUT", f"{_N}/routers/<str:router_id>/remove_router_interface"):
        "tests/unit/api/test_network_routers.py",
    ("POST", f"{_N}/floatingips"): "tests/unit/api/test_network_routers.py",
    ("PUT", f"{_N}/floatingips/<str:floatingip_id>"): "tests/unit/api/test_network_routers.py",
    ("DELETE", f"{_N}/floatingips/<str:floatingip_id>"): "tests/unit/api/test_network_routers.py",
})


# block storage (issue 17): Cinder's v3 under /volume/v3/{project_id}/ (the project acted in is
# the token's; rows name alpha's). Reads of a project's things are "read", changes "write";
# types, quotas and services are the admins'.
_V = "volume/v3/<str:project_id>"
_VP = "/volume/v3/{alpha}"
ROWS += [
    Row("GET", "volume", "public", "/volume"),
    Row("GET", "volume/v3", "public", "/volume/v3"),
    Row("GET", _V, "public", _VP),
    Row("GET", f"{_V}/volumes", "authenticated", f"{_VP}/volumes"),
    Row("GET", f"{_V}/volumes/detail", "authenticated", f"{_VP}/volumes/detail"),
    Row("POST", f"{_V}/volumes", "create", f"{_VP}/volumes", {"volume": {"size": 1}}),
    Row("GET", f"{_V}/volumes/<str:volume_id>", "read", f"{_VP}/volumes/{{volume}}"),
    Row("PUT", f"{_V}/volumes/<str:volume_id>", "write", f"{_VP}/volumes/{{volume}}",
        {"volume": {"name": "renamed"}}),
    Row("DELETE", f"{_V}/volumes/<str:volume_id>", "write", f"{_VP}/volumes/{{volume}}"),
    Row("POST", f"{_V}/volumes/<str:volume_id>/action", "write",
        f"{_VP}/volumes/{{volume}}/action", {"os-set_bootable": {"bootable": True}}),
    Row("GET", f"{_V}/volumes/<str:volume_id>/metadata", "read",
        f"{_VP}/volumes/{{volume}}/metadata"),
    Row("POST", f"{_V}/volumes/<str:volume_id>/metadata", "write",
        f"{_VP}/volumes/{{volume}}/metadata", {"metadata": {"a": "b"}}),
    Row("PUT", f"{_V}/volumes/<str:volume_id>/metadata", "write",
        f"{_VP}/volumes/{{volume}}/metadata", {"metadata": {"a": "b"}}),
    Row("GET", f"{_V}/volumes/<str:volume_id>/metadata/<str:key>", "read",
        f"{_VP}/volumes/{{volume}}/metadata/role"),
    Row("PUT", f"{_V}/volumes/<str:volume_id>/metadata/<str:key>", "write",
        f"{_VP}/volumes/{{volume}}/metadata/role", {"meta": {"role": "db"}}),
    Row("DELETE", f"{_V}/volumes/<str:volume_id>/metadata/<str:key>", "write",
        f"{_VP}/volumes/{{volume}}/metadata/role"),
    Row("GET", f"{_V}/snapshots", "authenticated", f"{_VP}/snapshots"),
    Row("GET", f"{_V}/snapshots/detail", "authenticated", f"{_VP}/snapshots/detail"),
    Row("POST", f"{_V}/snapshots", "write", f"{_VP}/snapshots",
        {"snapshot": {"volume_id": "{volume}"}}),
    Row("GET", f"{_V}/snapshots/<str:snapshot_id>", "read", f"{_VP}/snapshots/{{snapshot}}"),
    Row("PUT", f"{_V}/snapshots/<str:snapshot_id>", "write", f"{_VP}/snapshots/{{snapshot}}",
        {"snapshot": {"name": "renamed"}}),
    Row("DELETE", f"{_V}/snapshots/<str:snapshot_id>", "write", f"{_VP}/snapshots/{{snapshot}}"),
    Row("POST", f"{_V}/snapshots/<str:snapshot_id>/action", "server_admin",
        f"{_VP}/snapshots/{{snapshot}}/action", {"os-reset_status": {"status": "error"}}),
    Row("GET", f"{_V}/snapshots/<str:snapshot_id>/metadata", "read",
        f"{_VP}/snapshots/{{snapshot}}/metadata"),
    Row("POST", f"{_V}/snapshots/<str:snapshot_id>/metadata", "write",
        f"{_VP}/snapshots/{{snapshot}}/metadata", {"metadata": {"a": "b"}}),
    Row("PUT", f"{_V}/snapshots/<str:snapshot_id>/metadata", "write",
        f"{_VP}/snapshots/{{snapshot}}/metadata", {"metadata": {"a": "b"}}),
    Row("GET", f"{_V}/snapshots/<str:snapshot_id>/metadata/<str:key>", "read",
        f"{_VP}/snapshots/{{snapshot}}/metadata/k"),
    Row("PUT", f"{_V}/snapshots/<str:snapshot_id>/metadata/<str:key>", "write",
        f"{_VP}/snapshots/{{snapshot}}/metadata/k", {"meta": {"k": "w"}}),
    Row("DELETE", f"{_V}/snapshots/<str:snapshot_id>/metadata/<str:key>", "write",
        f"{_VP}/snapshots/{{snapshot}}/metadata/k"),
    Row("GET", f"{_V}/types", "authenticated", f"{_VP}/types"),
    Row("POST", f"{_V}/types", "admin", f"{_VP}/types", {"volume_type": {"name": "gold"}}),
    Row("GET", f"{_V}/types/default", "authenticated", f"{_VP}/types/default"),
    Row("GET", f"{_V}/types/<str:type_id>", "authenticated", f"{_VP}/types/{{default_type}}"),
    Row("PUT", f"{_V}/types/<str:type_id>", "admin", f"{_VP}/types/{{vtype}}",
        {"volume_type": {"description": "d"}}),
    Row("DELETE", f"{_V}/types/<str:type_id>", "admin", f"{_VP}/types/{{vtype}}"),
    Row("GET", f"{_V}/types/<str:type_id>/extra_specs", "authenticated",
        f"{_VP}/types/{{default_type}}/extra_specs"),
    Row("POST", f"{_V}/types/<str:type_id>/extra_specs", "admin",
        f"{_VP}/types/{{vtype}}/extra_specs", {"extra_specs": {"a": "b"}}),
    Row("GET", f"{_V}/types/<str:type_id>/extra_specs/<str:key>", "authenticated",
        f"{_VP}/types/{{default_type}}/extra_specs/missing"),
    Row("PUT", f"{_V}/types/<str:type_id>/extra_specs/<str:key>", "admin",
        f"{_VP}/types/{{vtype}}/extra_specs/a", {"a": "c"}),
    Row("DELETE", f"{_V}/types/<str:type_id>/extra_specs/<str:key>", "admin",
        f"{_VP}/types/{{vtype}}/extra_specs/tier"),
    Row("GET", f"{_V}/types/<str:type_id>/os-volume-type-access", "admin",
        f"{_VP}/types/{{vtype}}/os-volume-type-access"),
    Row("POST", f"{_V}/types/<str:type_id>/action", "admin", f"{_VP}/types/{{vtype}}/action",
        {"addProjectAccess": {"project": "{gamma}"}}),
    Row("GET", f"{_V}/os-quota-sets/<str:target>", "own", f"{_VP}/os-quota-sets/{{alpha}}"),
    Row("PUT", f"{_V}/os-quota-sets/<str:target>", "admin", f"{_VP}/os-quota-sets/{{alpha}}",
        {"quota_set": {"volumes": 20}}),
    Row("DELETE", f"{_V}/os-quota-sets/<str:target>", "admin", f"{_VP}/os-quota-sets/{{alpha}}"),
    Row("GET", f"{_V}/os-quota-sets/<str:target>/defaults", "own",
        f"{_VP}/os-quota-sets/{{alpha}}/defaults"),
    Row("GET", f"{_V}/limits", "authenticated", f"{_VP}/limits"),
    Row("GET", f"{_V}/os-availability-zone", "authenticated", f"{_VP}/os-availability-zone"),
    Row("GET", f"{_V}/os-services", "admin", f"{_VP}/os-services"),
    Row("PUT", f"{_V}/os-services/<str:action>", "admin", f"{_VP}/os-services/disable",
        {"host": "vol-1@nbd", "binary": "cinder-volume"}),
    Row("GET", f"{_V}/extensions", "authenticated", f"{_VP}/extensions"),
]
# Rows above 3.0 (the matrix asks at compute microversions): tests/unit/api/volume/.
COVERED_ELSEWHERE.update({
    ("GET", f"{_V}/volumes/summary"): "tests/unit/api/volume/test_volume_api.py",
    ("GET", f"{_V}/messages"): "tests/unit/api/volume/test_volume_api.py",
    ("GET", f"{_V}/messages/<str:message_id>"): "tests/unit/api/volume/test_volume_api.py",
    **{(method, f"{_V}/attachments{tail}"): "tests/unit/api/volume/test_volume_api.py"
       for method, tail in (("GET", ""), ("POST", ""), ("GET", "/detail"),
                            ("GET", "/<str:attachment_id>"), ("PUT", "/<str:attachment_id>"),
                            ("DELETE", "/<str:attachment_id>"),
                            ("POST", "/<str:attachment_id>/action"))},
})


def _routes():
    def walk(patterns, prefix=""):
        for p in patterns:
            if hasattr(p, "url_patterns"):
                yield from walk(p.url_patterns, prefix + str(p.pattern))
                continue
            cls = getattr(p.callback, "view_class", None)
            route = prefix + str(p.pattern)
            if cls is None or not route.split("/")[0] in ("identity", "compute", "image", "network",
                                                          "volume"):
                continue
            for method in ("get", "post", "put", "patch", "delete"):
                if hasattr(cls, method):
                    yield method.upper(), route

    return set(walk(get_resolver().url_patterns))


def test_every_api_route_has_a_row_in_the_matrix():
    covered = {(r.method, r.route) for r in ROWS} | set(COVERED_ELSEWHERE)
    # Trailing-slash twins of discovery documents and the detail lists' refused POST need no row.
    missing = sorted(
        (m, r) for m, r in _routes() - covered
        if not r.endswith("/") and not (m == "POST" and r.endswith("/detail"))
    )
    assert missing == []


@pytest.fixture
def world(db, settings, tmp_path):
    settings.KUMO_IMAGE_DIR = tmp_path / "images"
    people = {
        "admin": make_persona("alice-admin", "alpha", ["admin", "member", "reader"]),
        "member": make_persona("bob", "alpha", ["member", "reader"]),
        "reader": make_persona("carol", "alpha", ["reader"]),
        "other": make_persona("mallory", "beta", ["member", "reader"]),
        "outsider": make_persona("oscar", "beta", ["reader"]),
    }
    dave = make_persona("dave", "alpha", ["member"])
    gamma = make_persona("gus", "gamma", ["member"]).project
    expired = make_persona("old-timer", "alpha", ["admin", "member", "reader"])
    Token.objects.filter(user=expired.user).update(expires_at=timezone.now() - timedelta(seconds=1))
    people["expired"] = expired
    bob = people["member"]

    Flavor.objects.create(flavorid="1", name="m1.tiny", vcpus=1, memory_mb=128, root_gb=1,
                          extra_specs={"quota:cpu_shares": "1024"})
    Flavor.objects.create(flavorid="2", name="m1.small", vcpus=1, memory_mb=512, root_gb=10)
    net = Network.objects.create(name="private", shared=True, project=people["admin"].project)
    Subnet.objects.create(network=net, name="private-subnet", cidr="10.0.0.0/24", gateway_ip="10.0.0.1")
    own_net = Network.objects.create(name="alpha-net", project=bob.project)
    own_subnet = Subnet.objects.create(network=own_net, project=bob.project, cidr="10.1.0.0/24")

    client = Client()
    headers = bob.headers("2.60")
    image = client.post("/image/v2/images", json.dumps({
        "name": "alpha-img", "disk_format": "qcow2", "container_format": "bare"}),
        content_type="application/json", **headers).json()["id"]
    response = client.put(f"/image/v2/images/{image}/file", _qcow2(),
                          content_type="application/octet-stream", **headers)
    assert response.status_code == 204, response.content
    queued = Image.objects.create(name="q", disk_format="qcow2", container_format="bare",
                                  owner=bob.project, visibility="private")
    created = client.post(f"{C}/servers", json.dumps({"server": {
        "name": "alpha-vm", "imageRef": image, "flavorRef": "1", "networks": [{"uuid": str(net.id)}],
        "metadata": {"role": "web"}}}), content_type="application/json", **headers)
    assert created.status_code == 202, created.content
    server = created.json()["server"]["id"]
    group = ServerGroup.objects.create(name="g", project=bob.project, user=bob.user, policy="affinity")
    KeyPair.objects.create(user=bob.user, name="bobkey", public_key="ssh-rsa AAAA", fingerprint="x")
    service = Service.objects.create(host="compute-1", binary="nova-compute", last_seen_up=timezone.now())
    idle = Service.objects.create(host="compute-2", binary="nova-compute")
    node = ComputeNode.objects.create(service=service, host="compute-1", hypervisor_hostname="compute-1")
    aggregate = Aggregate.objects.create(name="agg")
    extra_role = Role.objects.create(name="observer")
    vol_host = VolumeHost.objects.create(name="vol-1", total_gb=100, free_gb=100,
                                         last_seen=timezone.now())
    volume = Volume.objects.create(project=bob.project, user_id=bob.user.id, size=1,
                                   status="available", host=vol_host, metadata={"role": "web"},
                                   volume_type=VolumeType.objects.get(name="__DEFAULT__"))
    snapshot = VolumeSnapshot.objects.create(volume=volume, project=bob.project, size=1,
                                             status="available", metadata={"k": "v"})
    vtype = VolumeType.objects.create(name="silver", is_public=False, extra_specs={"tier": "2"})
    ids = {
        "alpha": bob.project.id, "gamma": gamma.id, "bob": bob.user.id, "dave": dave.user.id,
        "member_role": Role.objects.get(name="member").id, "extra_role": extra_role.id,
        "image": image, "queued_image": str(queued.id), "server": server, "group": str(group.uuid),
        "service": str(service.uuid), "idle_service": str(idle.uuid), "node": str(node.uuid),
        "aggregate": aggregate.id, "own_network": str(own_net.id), "own_subnet": str(own_subnet.id),
        "port": str(Port.objects.get(device_id=server).id),
        "request_id": InstanceAction.objects.get(instance_id=server).request_id,
        "volume": str(volume.pk), "snapshot": str(snapshot.pk), "vtype": str(vtype.pk),
        "default_type": str(VolumeType.objects.get(name="__DEFAULT__").pk),
    }
    return people, ids


def _expected(kind: str, persona: str) -> set[int] | str:
    """A set of acceptable statuses, or "allowed" (anything but 401/403/5xx)."""
    if kind == "public":
        return "allowed"
    if persona in ("none", "expired"):
        return {401}
    table = {
        "authenticated": dict.fromkeys(["admin", "member", "reader", "other", "outsider"], "allowed"),
        "admin": {"admin": "allowed", "member": {403}, "reader": {403}, "other": {403},
                  "outsider": {403}},
        "server_admin": {"admin": "allowed", "member": {403}, "reader": {403}, "other": {404},
                         "outsider": {404}},
        "read": {"admin": "allowed", "member": "allowed", "reader": "allowed", "other": {404},
                 "outsider": {404}},
        "write": {"admin": "allowed", "member": "allowed", "reader": {403}, "other": {404},
                  "outsider": {404}},
        "create": {"admin": "allowed", "member": "allowed", "reader": {403}, "other": "allowed",
                   "outsider": {403}},
        "own": {"admin": "allowed", "member": "allowed", "reader": "allowed", "other": {403},
                "outsider": {403}},
        "self": {"admin": "allowed", "member": "allowed", "reader": {403}, "other": {403},
                 "outsider": {403}},
    }
    return table[kind][persona]


def _fill(value, ids):
    if isinstance(value, str):
        for key, item in ids.items():
            value = value.replace("{" + key + "}", str(item))
        return value
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


def _denials_first(kind: str) -> list[str]:
    """The personas in the order one shared world can serve them all: those refused first (a refusal
    changes nothing, which the later personas then also show), those allowed after (a delete may leave
    a 404 for the next allowed one, which "allowed" accepts)."""
    return sorted(PERSONAS, key=lambda persona: _expected(kind, persona) == "allowed")


def _ask(row, persona: str, people, ids):
    headers = {} if persona == "none" else people[persona].headers(row.version)
    if row.route == "identity/v3/auth/tokens" and persona != "none":
        headers["HTTP_X_SUBJECT_TOKEN"] = people[persona].token
    path = _fill(row.path, ids)
    client = Client()
    if row.body == "QCOW2":
        return path, client.put(path, _qcow2(), content_type="application/octet-stream", **headers)
    data = "" if row.body is None else json.dumps(_fill(row.body, ids))
    content_type = ("application/openstack-images-v2.1-json-patch" if row.method == "PATCH"
                    and path.startswith("/image") else "application/json")
    return path, client.generic(row.method, path, data, content_type=content_type, **headers)


# One world per row rather than per row and persona: building it is most of a case's time, and the
# matrix has thousands of cases.
@pytest.mark.parametrize("row", ROWS, ids=lambda r: f"{r.method} {r.path} [{r.kind}]")
def test_each_persona_gets_what_the_policy_says(world, row):
    people, ids = world
    wrong = []
    for persona in _denials_first(row.kind):
        path, response = _ask(row, persona, people, ids)
        expected = _expected(row.kind, persona)
        detail = (f"{persona} {row.method} {path} → {response.status_code} "
                  f"{getattr(response, 'content', b'')[:300]!r}")
        if expected == "allowed":
            if response.status_code in (401, 403) or response.status_code >= 500:
                wrong.append(detail)
        elif response.status_code not in expected:
            wrong.append(detail)
        if response.status_code >= 400 and not response["Content-Type"].startswith("application/json"):
            wrong.append(f"not JSON: {detail}")
    assert wrong == []


@pytest.mark.parametrize("persona", ["other", "outsider"])
def test_no_write_of_another_project_changes_anything(world, persona):
    """Beta's member and reader aim every write at alpha's ids: all 404, and alpha's rows are
    unchanged."""
    people, ids = world
    before = _snapshot(ids)
    client = Client()
    headers = people[persona].headers("2.60")
    for row in ROWS:
        if row.kind not in ("write", "server_admin"):
            continue
        path = _fill(row.path, ids)
        data = "" if row.body in (None, "QCOW2") else json.dumps(_fill(row.body, ids))
        content_type = ("application/openstack-images-v2.1-json-patch" if row.method == "PATCH"
                        and path.startswith("/image") else "application/json")
        response = client.generic(row.method, path, data, content_type=content_type, **headers)
        refused = _expected(row.kind, persona)
        assert response.status_code in refused, f"{row.method} {path} → {response.status_code}"
    assert _snapshot(ids) == before


def _snapshot(ids) -> dict:
    server = Instance.objects.get(pk=ids["server"])
    return {
        "server": (server.display_name, server.metadata, server.locked, server.deleted, server.task_state),
        "image": list(Image.objects.filter(owner_id=ids["alpha"]).values_list("id", "name", "status")),
        "group": ServerGroup.objects.filter(pk=ids["group"]).exists(),
        "ports": Port.objects.filter(device_id=ids["server"]).count(),
    }


def test_another_project_sees_none_of_alphas_things_in_lists_or_filters(world):
    people, ids = world
    client = Client()
    headers = people["other"].headers("2.60")

    def listed(path: str) -> str:
        response = client.get(path, **headers)
        assert response.status_code in (200, 403), f"{path} → {response.status_code}"
        return response.content.decode() if response.status_code == 200 else ""

    pages = [
        f"{C}/servers", f"{C}/servers/detail", f"{C}/servers/detail?name=alpha",
        f"{C}/servers/detail?project_id={ids['alpha']}", f"{C}/servers/detail?image={ids['image']}",
        f"{C}/servers/detail?all_tenants=1", f"{C}/os-server-groups", f"{C}/os-server-groups?all_projects=1",
        f"{C}/os-keypairs", "/image/v2/images", f"/image/v2/images?owner={ids['alpha']}",
        f"/image/v2/images?id=in:{ids['image']}", "/network/v2.0/ports",
        f"/network/v2.0/ports?device_id={ids['server']}", "/network/v2.0/networks",
        f"/network/v2.0/networks?project_id={ids['alpha']}", "/network/v2.0/subnets",
        f"{C}/limits?tenant_id={ids['alpha']}",
    ]
    for page in pages:
        text = listed(page)
        for secret in ("server", "image", "group", "port", "own_network", "own_subnet"):
            assert ids[secret] not in text, f"{page} shows alpha's {secret}"
        assert "bobkey" not in text and "alpha-vm" not in text, page
