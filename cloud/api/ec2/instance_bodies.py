"""Servers as EC2 describes them: instance bodies, their state, their reservations.

A page of servers is described in a fixed number of queries whatever its size (`Page`): the
servers, their ports with floating IPs, their security groups' ids, their volumes, their zones
and their tags, each read once for the page. EC2 ids are a pure function of the uuids
(resources.id_of), so nothing is looked up to name an instance, an image, a volume or a subnet.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from cloud.compute import availability_zones, states
from cloud.compute.models import BlockDeviceMapping, Instance
from cloud.compute.server_rows import Among
from cloud.identity.context import RequestContext
from cloud.ids import ec2_uuid_range, parse_uuid
from cloud.network import security_groups
from cloud.network.models import Port, SecurityGroup
from compute_agent import messages as msg

from . import listing, resources, tags
from .errors import not_found

# EC2's instance states and their codes.
PENDING = (0, "pending")
RUNNING = (16, "running")
SHUTTING_DOWN = (32, "shutting-down")
TERMINATED = (48, "terminated")
STOPPING = (64, "stopping")
STOPPED = (80, "stopped")

# How long a terminated instance is still described, as EC2 keeps one visible about an hour.
TERMINATED_VISIBLE = dt.timedelta(hours=1)
# The scheduler hint RunInstances keeps a request's ClientToken in (actions_instances.py).
CLIENT_TOKEN_KEY = "ec2_client_token"

# Tasks that take a server down or bring it up: EC2 shows the way, not where it started.
_GOING_DOWN = frozenset({states.POWERING_OFF, states.SHELVING, states.SHELVING_OFFLOADING,
                         states.SUSPENDING, states.PAUSING})
_COMING_UP = frozenset({states.POWERING_ON, states.UNSHELVING, states.RESUMING,
                        states.UNPAUSING})
# Kumo's vm_states EC2 has no word for: a paused, suspended or shelved server runs no guest
# (stopped); one being rescued or waiting for a resize to be confirmed runs one (running); one in
# error is read from its power state (state_of).
_BY_VM_STATE = {
    states.BUILDING: PENDING, states.ACTIVE: RUNNING, states.STOPPED: STOPPED,
    states.PAUSED: STOPPED, states.SUSPENDED: STOPPED, states.SHELVED: STOPPED,
    states.SHELVED_OFFLOADED: STOPPED, states.RESCUED: RUNNING, states.RESIZED: RUNNING,
    states.DELETED: TERMINATED,
}


def state_of(row: Instance) -> tuple[int, str]:
    """EC2's (code, name) of a server's state."""
    if row.deleted or row.vm_state == states.DELETED:
        return TERMINATED
    task = row.task_state
    if task == states.DELETING:
        return SHUTTING_DOWN
    if task in _GOING_DOWN:
        return STOPPING
    if task in _COMING_UP or task in (states.SCHEDULING, states.SPAWNING,
                                      states.BLOCK_DEVICE_MAPPING):
        return PENDING
    if row.vm_state == states.RESIZED and row.power_state == msg.POWER_SHUTDOWN:
        return STOPPED  # a stopped server given a new instanceType, kept at its next start
    if row.vm_state == states.ERROR:
        # EC2 has no error state: the guest runs or it does not, as its host last said.
        return RUNNING if row.power_state == msg.POWER_RUNNING else STOPPED
    return _BY_VM_STATE.get(row.vm_state, PENDING)


def state_body(state: tuple[int, str]) -> dict[str, Any]:
    return {"code": state[0], "name": state[1]}


def visible(ctx: RequestContext) -> QuerySet[Instance]:
    """The servers the caller's project sees through EC2: its own (EC2 has no all-tenants view,
    an admin too sees the project of its credential), and those terminated within the hour."""
    recent = timezone.now() - TERMINATED_VISIBLE
    return Instance.objects.filter(Q(deleted=False) | Q(deleted_at__gte=recent),
                                   project_id=ctx.project_id)


def live(ctx: RequestContext) -> QuerySet[Instance]:
    """The project's servers that still exist: what an action may act on."""
    return Instance.objects.filter(project_id=ctx.project_id, deleted=False)


def find(value: str, rows: QuerySet[Instance]) -> Instance:
    return resources.find(resources.INSTANCE, value, rows)


def find_all(values: list[str], rows: QuerySet[Instance]) -> list[Instance]:
    """The servers the ids name, in order, in one query; the first unknown one (malformed, of
    another project, or gone) is InvalidInstanceID.NotFound / .Malformed."""
    for value in values:
        resources.check_id(resources.INSTANCE, value)
    by_id = {resources.id_of(resources.INSTANCE, row.pk): row for row in
             _among(values, rows)}
    out = []
    for value in values:
        row = by_id.get(value.lower())
        if row is None:
            raise not_found(resources.INSTANCE[1], resources.INSTANCE[2], value)
        out.append(row)
    return out


def _among(values: list[str], rows: QuerySet[Instance]) -> list[Instance]:
    q = Q()
    for value in values:
        bounds = ec2_uuid_range(resources.INSTANCE[0], value)
        if bounds is not None:
            q |= Q(pk__gte=bounds[0], pk__lte=bounds[1])
    return list(rows.filter(q)) if q else []


def _root_name(row: Instance, devices: list[BlockDeviceMapping]) -> str:
    root = next((d for d in devices if d.boot_index == 0), None)
    return (root.device_name if root is not None and root.device_name else "/dev/vda")


class Page:
    """What a page of servers' bodies need besides the servers, each read in one query."""

    def __init__(self, rows: list[Instance]) -> None:
        uuids = [str(r.pk) for r in rows]
        self.ports: dict[str, list[dict[str, Any]]] = defaultdict(list)
        last = None
        port_ids = []
        for (port_id, device_id, network_id, mac, fixed_ips, floating,
             mapped) in Port.objects.filter(Among("device_id", uuids)).order_by(
                "created_at", "id").values_list(
                "id", "device_id", "network_id", "mac_address", "fixed_ips",
                "floating_ips__floating_ip_address", "floating_ips__fixed_ip_address"):
            if port_id != last:
                last = port_id
                port_ids.append(port_id)
                port = {"id": port_id, "network_id": network_id, "mac": mac,
                        "fixed_ips": fixed_ips or [], "floating": {}}
                self.ports[device_id].append(port)
            if floating is not None:
                port["floating"][mapped] = floating
        # The groups the servers name, by (project, name) → id: one query for the page.
        wanted = {(str(r.project_id), name) for r in rows for name in r.security_groups or []}
        self.group_ids: dict[tuple[str, str], str] = {}
        if wanted:
            for pk, project_id, name in SecurityGroup.objects.filter(
                    project_id__in={p for p, _ in wanted},
                    name__in={n for _, n in wanted}).values_list("id", "project_id", "name"):
                self.group_ids.setdefault((str(project_id), name), str(pk))
        for project_id, name in wanted:
            if name == security_groups.DEFAULT:  # its id is known before it is made
                self.group_ids.setdefault(
                    (project_id, name), str(security_groups.default_group_id(project_id)))
        self.devices: dict[str, list[BlockDeviceMapping]] = defaultdict(list)
        if uuids:
            for device in BlockDeviceMapping.objects.filter(instance_id__in=uuids).order_by(
                    "id"):
                self.devices[str(device.instance_id)].append(device)
        self.zones = availability_zones.host_zones({r.host for r in rows if r.host})
        self.tags = tags.tags_for(resources.INSTANCE, uuids) if uuids else {}

    def zone(self, row: Instance) -> str:
        if row.host:
            return availability_zones.zone_of(row.host, self.zones)
        return row.availability_zone or ""


def _groups(row: Instance, page: Page) -> list[dict[str, Any]]:
    project_id = str(row.project_id)
    out = []
    for name in row.security_groups or []:
        group_id = page.group_ids.get((project_id, name))
        out.append({"groupId": resources.id_of(resources.SECURITY_GROUP, group_id)
                    if group_id else None, "groupName": name})
    return out


def _interfaces(row: Instance, page: Page, groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for index, port in enumerate(page.ports.get(str(row.pk), [])):
        v4 = [f for f in port["fixed_ips"] if ":" not in f.get("ip_address", "")]
        first = v4[0] if v4 else None
        subnet = first.get("subnet_id") if first else None
        address = first["ip_address"] if first else None
        floating = port["floating"].get(address) if address else None
        out.append({
            "networkInterfaceId": f"eni-{port['id'].hex[:17]}",
            "subnetId": resources.id_of(resources.SUBNET, subnet) if parse_uuid(subnet) else None,
            "vpcId": resources.id_of(resources.VPC, port["network_id"]),
            "ownerId": str(row.project_id), "status": "in-use", "macAddress": port["mac"],
            "privateIpAddress": address, "privateDnsName": _dns(address),
            "sourceDestCheck": True, "groupSet": groups,
            "attachment": {"attachmentId": f"eni-attach-{port['id'].hex[:17]}",
                           "deviceIndex": index, "status": "attached",
                           "deleteOnTermination": True},
            "association": {"publicIp": floating, "ipOwnerId": str(row.project_id)}
            if floating else None,
            "privateIpAddressesSet": [{"privateIpAddress": f["ip_address"],
                                       "primary": f is first} for f in v4],
        })
    return out


def _dns(address: str | None) -> str | None:
    return f"ip-{address.replace('.', '-')}.ec2.internal" if address else None


def _block_devices(row: Instance, page: Page) -> list[dict[str, Any]]:
    return [{"deviceName": d.device_name, "ebs": {
        "volumeId": resources.id_of(resources.VOLUME, d.volume_id),
        "status": "attached" if d.attachment_id else "attaching", "attachTime": d.created_at,
        "deleteOnTermination": d.delete_on_termination}}
        for d in page.devices.get(str(row.pk), []) if d.volume_id is not None]


def describe(row: Instance, page: Page) -> dict[str, Any]:
    """One server as EC2's Instance (the shape of DescribeInstances and RunInstances)."""
    groups = _groups(row, page)
    interfaces = _interfaces(row, page, groups)
    primary = interfaces[0] if interfaces else {}
    devices = page.devices.get(str(row.pk), [])
    ebs_root = any(d.boot_index == 0 for d in devices)
    state = state_of(row)
    public_ip = (primary.get("association") or {}).get("publicIp")
    return {
        "instanceId": resources.id_of(resources.INSTANCE, row.pk),
        "imageId": resources.id_of(resources.IMAGE, row.image_ref)
        if parse_uuid(row.image_ref) else None,
        "instanceState": state_body(state),
        "privateDnsName": primary.get("privateDnsName") or "",
        "dnsName": f"ec2-{public_ip.replace('.', '-')}.compute.kumo" if public_ip else "",
        "reason": "User initiated" if state in (STOPPED, TERMINATED) else "",
        "keyName": row.key_name or None,
        "amiLaunchIndex": row.launch_index,
        "productCodes": [],
        "instanceType": (row.flavor_snapshot or {}).get("name", ""),
        "launchTime": row.launched_at or row.created_at,
        "placement": {"availabilityZone": page.zone(row), "tenancy": "default",
                      "groupName": ""},
        "monitoring": {"state": "disabled"},
        "subnetId": primary.get("subnetId"),
        "vpcId": primary.get("vpcId"),
        "privateIpAddress": primary.get("privateIpAddress"),
        "ipAddress": public_ip,
        "sourceDestCheck": True if interfaces else None,
        "groupSet": groups,
        "stateReason": {"code": "Client.UserInitiatedShutdown",
                        "message": "Client.UserInitiatedShutdown: User initiated shutdown"}
        if state in (STOPPED, TERMINATED) and row.vm_state != states.ERROR else
        {"code": "Server.InternalError", "message": "Server.InternalError: the server failed"}
        if row.vm_state == states.ERROR else None,
        "architecture": "x86_64",
        "rootDeviceType": "ebs" if ebs_root else "instance-store",
        "rootDeviceName": _root_name(row, devices),
        "blockDeviceMapping": _block_devices(row, page),
        "virtualizationType": "hvm",
        "clientToken": (row.scheduler_hints or {}).get(CLIENT_TOKEN_KEY) or "",
        "tagSet": page.tags.get(str(row.pk), []),
        "hypervisor": "kvm",
        "networkInterfaceSet": interfaces,
        "ebsOptimized": False,
        "enaSupport": False,
        "cpuOptions": {"coreCount": row.vcpus, "threadsPerCore": 1},
        "metadataOptions": {"state": "applied", "httpTokens": "optional",
                            "httpEndpoint": "enabled"},
    }


def describe_rows(rows: list[Instance]) -> list[dict[str, Any]]:
    page = Page(rows)
    return [describe(row, page) for row in rows]


def reservations(rows: list[Instance], bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The bodies grouped by reservation, in the order their first instance comes."""
    grouped: dict[str, dict[str, Any]] = {}
    for row, body in zip(rows, bodies, strict=True):
        key = row.reservation_id or f"r-{row.pk.hex[:17]}"
        reservation = grouped.get(key)
        if reservation is None:
            reservation = grouped[key] = {
                "reservationId": key, "ownerId": str(row.project_id),
                "groupSet": body["groupSet"], "instancesSet": []}
        reservation["instancesSet"].append(body)
    return list(grouped.values())


def _group_ids(item: dict[str, Any]) -> list[str]:
    return [g.get("groupId") for g in item.get("groupSet") or [] if g.get("groupId")]


# DescribeInstances' filters, over the bodies above; reservation-id and owner-id are read from
# the reservation the instance is in (actions_instances adds them to each body).
FILTERS: listing.Filters = {
    "instance-id": listing.path("instanceId"),
    "instance-state-name": listing.path("instanceState", "name"),
    "instance-state-code": listing.path("instanceState", "code"),
    "instance-type": listing.path("instanceType"),
    "image-id": listing.path("imageId"),
    "key-name": listing.path("keyName"),
    "availability-zone": listing.path("placement", "availabilityZone"),
    "private-ip-address": listing.path("privateIpAddress"),
    "ip-address": listing.path("ipAddress"),
    "private-dns-name": listing.path("privateDnsName"),
    "dns-name": listing.path("dnsName"),
    "reservation-id": listing.path("_reservationId"),
    "owner-id": listing.path("_ownerId"),
    "vpc-id": listing.path("vpcId"),
    "subnet-id": listing.path("subnetId"),
    "launch-time": lambda item: [item["launchTime"].astimezone(dt.UTC).isoformat(
        timespec="milliseconds").replace("+00:00", "Z")],
    "launch-index": listing.path("amiLaunchIndex"),
    "architecture": listing.path("architecture"),
    "root-device-type": listing.path("rootDeviceType"),
    "root-device-name": listing.path("rootDeviceName"),
    "client-token": listing.path("clientToken"),
    "instance.group-id": _group_ids,
    "group-id": _group_ids,
    "instance.group-name": listing.path("groupSet", "groupName"),
    "group-name": listing.path("groupSet", "groupName"),
    "block-device-mapping.volume-id": listing.path("blockDeviceMapping", "ebs", "volumeId"),
    "block-device-mapping.device-name": listing.path("blockDeviceMapping", "deviceName"),
    "network-interface.network-interface-id": listing.path("networkInterfaceSet",
                                                           "networkInterfaceId"),
    "monitoring-state": listing.path("monitoring", "state"),
    "tenancy": listing.path("placement", "tenancy"),
    "hypervisor": listing.path("hypervisor"),
    "virtualization-type": listing.path("virtualizationType"),
    "state-reason-code": listing.path("stateReason", "code"),
}
