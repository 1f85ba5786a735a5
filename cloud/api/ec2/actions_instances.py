"""Instances: RunInstances, DescribeInstances, DescribeInstanceStatus, Start/Stop/Reboot/
TerminateInstances, over Nova's servers of the caller's project (cloud.compute.servers and
operations, under the same policy rules as POST /servers and its actions).

A ClientToken is kept as the scheduler hint `ec2_client_token` of each server the request made,
with a digest of the request's parameters beside it: it travels with the server, counts against
no quota, shows in no tag (tags are the server's metadata, tags.py) and no later call changes it;
looking it up is one query of the project's servers. The lookup and the create run under a lock
on the project's row, so two requests with one token make one reservation; the same token with
other parameters is IdempotentParameterMismatch, as in EC2.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import json
from typing import Any

from django.db import transaction

from cloud import errors
from cloud.compute import boot_volumes, hosts, operations, servers, states
from cloud.compute.flavors import usable_by
from cloud.compute.keypairs import keypairs_of
from cloud.compute.models import COMPUTE_BINARY, Flavor, Instance, Service
from cloud.compute.servers import ServerRequest
from cloud.compute.transitions import ensure_unlocked
from cloud.identity.models import Project
from cloud.images.visibility import visible_images
from cloud.network.models import SecurityGroup
from cloud.network.subnets import visible_subnets
from cloud.volumes.models import VolumeSnapshot
from compute_agent import messages as msg

from . import instance_bodies as ib
from . import listing, resources, tags
from .errors import Ec2Error, invalid, missing, translate
from .params import Params
from .registry import Call, action

# EC2's root device names: a volume mapped there is the server's boot volume.
ROOT_DEVICES = ("/dev/sda1", "/dev/sda", "/dev/xvda", "/dev/vda")
DEFAULT_TYPE = "m1.small"  # EC2's InstanceType when a request names none
MAX_USER_DATA = 65535  # Nova's limit of the base64 text
# The scheduler hint beside the ClientToken: a digest of what the request asked for.
REQUEST_KEY = "ec2_client_request"


def dry_run(params: Params) -> None:
    """EC2's DryRun: the caller may do it (the policy rule passed to get here), nothing done."""
    if params.flag("DryRun", False):
        raise Ec2Error("DryRunOperation", "Request would have succeeded, but DryRun flag is set.",
                       412)


# --- RunInstances


def _image(call: Call, ami: str) -> str:
    image = resources.find(resources.IMAGE, ami, visible_images(call.ctx))
    return str(image.pk)


def usable_flavor(call: Call, name: str) -> Flavor:
    flavor = usable_by(call.ctx, Flavor.objects.filter(name=name, disabled=False)).first()
    if flavor is None:
        raise invalid("InstanceType", name, "No instance type of that name is available to "
                      "you: see DescribeInstanceTypes.")
    return flavor


def _groups(call: Call) -> list[str] | None:
    """The security groups' names, from SecurityGroupId.N (sg- ids) and SecurityGroup.N (names)."""
    mine = SecurityGroup.objects.filter(project_id=call.ctx.project_id)
    names = [resources.find(resources.SECURITY_GROUP, value, mine).name
             for value in call.params.strings("SecurityGroupId")]
    for name in call.params.strings("SecurityGroup"):
        if name != "default" and not mine.filter(name=name).exists():
            raise Ec2Error("InvalidGroup.NotFound",
                           f"The security group '{name}' does not exist")
        names.append(name)
    return names or None


def _networks(call: Call) -> str | list[dict[str, Any]]:
    subnet_id = call.params.get("SubnetId")
    if not subnet_id:
        if call.params.get("PrivateIpAddress"):
            raise Ec2Error("InvalidParameterCombination",
                           "PrivateIpAddress needs a SubnetId to be in.")
        return "auto"
    subnet = resources.find(resources.SUBNET, subnet_id, visible_subnets(call.ctx))
    entry: dict[str, Any] = {"uuid": str(subnet.network_id)}
    if call.params.get("PrivateIpAddress"):
        entry["fixed_ip"] = call.params.get("PrivateIpAddress")
    return [entry]


def _user_data(params: Params) -> str | None:
    text = params.get("UserData")
    if not text:
        return None
    if len(text) > MAX_USER_DATA:
        raise invalid("UserData", "…", f"It is at most {MAX_USER_DATA} characters of base64.")
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise invalid("UserData", "…", "It must be base64-encoded.") from None
    return text


def _mappings(call: Call, image_id: str) -> list[dict[str, Any]]:
    """BlockDeviceMapping.N as Nova's block_device_mapping_v2: an Ebs volume at a root device
    name is the boot volume (made from the image, of VolumeSize, or from its SnapshotId), the
    others are volumes made from a snapshot or blank. EC2 deletes Ebs volumes with the instance
    unless told not to."""
    snapshots = VolumeSnapshot.objects.filter(project_id=call.ctx.project_id)
    out = []
    for spec in call.params.items("BlockDeviceMapping"):
        device = spec.required("DeviceName")
        if spec.get("VirtualName") or spec.has("NoDevice"):
            raise invalid("BlockDeviceMapping.VirtualName", spec.get("VirtualName") or device,
                          "Instance store and NoDevice mappings are not supported: give the "
                          "instance type ephemeral storage instead.")
        ebs = spec.struct("Ebs")
        if ebs is None:
            raise missing(f"BlockDeviceMapping {device} Ebs")
        size = ebs.integer("VolumeSize", None, low=1, high=16384)
        snapshot = ebs.get("SnapshotId")
        root = device in ROOT_DEVICES
        bdm: dict[str, Any] = {
            "destination_type": "volume", "boot_index": 0 if root else None,
            "delete_on_termination": ebs.flag("DeleteOnTermination", True),
            "volume_size": size, "device_name": device,
        }
        if snapshot:
            found = resources.find(resources.SNAPSHOT, snapshot, snapshots)
            bdm.update(source_type="snapshot", uuid=str(found.pk))
        elif root:
            if size is None:
                raise missing(f"BlockDeviceMapping {device} Ebs.VolumeSize")
            bdm.update(source_type="image", uuid=image_id)
        else:
            if size is None:
                raise missing(f"BlockDeviceMapping {device} Ebs.VolumeSize")
            bdm.update(source_type="blank")
        if ebs.get("VolumeType"):
            bdm["volume_type"] = ebs.get("VolumeType")
        out.append(bdm)
    return out


def _request(call: Call) -> tuple[ServerRequest, dict[str, str]]:
    params = call.params
    image_id = _image(call, params.required("ImageId"))
    min_count = params.integer("MinCount", None, low=1) or 0
    max_count = params.integer("MaxCount", None, low=1) or 0
    if not min_count:
        raise missing("MinCount")
    if not max_count:
        raise missing("MaxCount")
    if min_count > max_count:
        raise invalid("MinCount", min_count, "It must not be more than MaxCount.")
    flavor = usable_flavor(call, params.get("InstanceType") or DEFAULT_TYPE)
    key_name = params.get("KeyName")
    if key_name and not keypairs_of(call.ctx.user_id).filter(name=key_name).exists():
        raise Ec2Error("InvalidKeyPair.NotFound", f"The key pair '{key_name}' does not exist")
    instance_tags = tags.tag_specifications(params, "instance")
    image_ref, devices = boot_volumes.parse({"imageRef": image_id,
                                             "block_device_mapping_v2": _mappings(call, image_id)})
    placement = params.struct("Placement")
    request = ServerRequest(
        name=instance_tags.get("Name") or "instance",
        image_id=image_ref, block_devices=devices, flavor_ref=flavor.flavorid,
        networks=_networks(call), key_name=key_name, user_data=_user_data(params),
        # Instance tags are the server's metadata (tags.py): counted as Nova counts it.
        metadata=instance_tags, min_count=min_count, max_count=max_count,
        security_groups=_groups(call),
        availability_zone=placement.get("AvailabilityZone") if placement else None,
    )
    token = params.get("ClientToken")
    if token:
        if len(token) > 64:
            raise invalid("ClientToken", token, "It is at most 64 characters.")
        volume_tags = tags.tag_specifications(params, "volume")
        request.scheduler_hints = {ib.CLIENT_TOKEN_KEY: token,
                                   REQUEST_KEY: _fingerprint(request, volume_tags)}
    return request, tags.tag_specifications(params, "volume")


def _fingerprint(request: ServerRequest, volume_tags: dict[str, str]) -> str:
    """What the request asks for, so a token sent again with other parameters is told apart."""
    asked = [request.image_id, request.flavor_ref, request.networks, request.key_name,
             request.user_data, request.metadata, request.min_count, request.max_count,
             request.security_groups, request.availability_zone, volume_tags,
             [dataclasses.asdict(d) for d in request.block_devices]]
    return hashlib.sha256(json.dumps(asked, sort_keys=True).encode()).hexdigest()[:32]


def _create(call: Call, request: ServerRequest) -> list[Instance]:
    try:
        return servers.create_servers(call.ctx, request)
    except errors.OverLimit:
        if request.min_count == request.max_count:
            raise
    # EC2 launches as many as it can between MinCount and MaxCount; Kumo reserves the quota of
    # every server it makes at once, so the second try is the least the request accepts.
    request.max_count = request.min_count
    return servers.create_servers(call.ctx, request)


def _tag_volumes(call: Call, rows: list[Instance], volume_tags: dict[str, str]) -> None:
    if not volume_tags:
        return
    page = ib.Page(rows)
    for row in rows:
        for device in page.devices.get(str(row.pk), []):
            if device.volume_id is not None and device.source_type != "volume":
                tags.set_tags(call.ctx, resources.VOLUME, device.volume_id, volume_tags)


def _reservation(rows: list[Instance]) -> dict[str, Any]:
    rows = sorted(rows, key=lambda r: r.launch_index)
    bodies = ib.describe_rows(rows)
    (reservation,) = ib.reservations(rows, bodies)
    return reservation


@action("RunInstances", "compute:servers:create")
def run_instances(call: Call) -> dict[str, Any]:
    request, volume_tags = _request(call)
    dry_run(call.params)
    token = (request.scheduler_hints or {}).get(ib.CLIENT_TOKEN_KEY)
    try:
        with transaction.atomic():
            if token:
                # One request per project at a time past this point: the same token twice at
                # once makes one reservation.
                Project.objects.select_for_update().filter(pk=call.ctx.project_id).first()
                made = list(Instance.objects.filter(
                    project_id=call.ctx.project_id,
                    **{f"scheduler_hints__{ib.CLIENT_TOKEN_KEY}": token}))
                if made:
                    if any((r.scheduler_hints or {}).get(REQUEST_KEY) !=
                           request.scheduler_hints.get(REQUEST_KEY) for r in made):
                        raise Ec2Error("IdempotentParameterMismatch",
                                       f"The client token '{token}' was used by a request "
                                       "with other parameters.")
                    return _reservation(made)
            rows = _create(call, request)
            _tag_volumes(call, rows, volume_tags)
    except errors.KumoError as exc:
        raise _refusal(exc, request) from exc
    return _reservation([Instance.objects.get(pk=r.pk) for r in rows])


def _refusal(exc: errors.KumoError, request: ServerRequest) -> Ec2Error:
    if isinstance(exc, errors.OverLimit) and "metadata_items" in exc.resources:
        return Ec2Error("TagLimitExceeded", exc.message)
    if isinstance(exc, errors.BadRequest) and "availability zone" in exc.message.lower():
        return invalid("Placement.AvailabilityZone", request.availability_zone, exc.message)
    return translate(exc)


# --- DescribeInstances, DescribeInstanceStatus


def _described(call: Call) -> tuple[list[Instance], list[dict[str, Any]]]:
    ids = call.params.strings("InstanceId")
    rows = ib.visible(call.ctx).order_by("created_at", "uuid")
    chosen = ib.find_all(ids, rows) if ids else list(rows)
    return chosen, ib.describe_rows(chosen)


@action("DescribeInstances", "compute:servers:index")
def describe_instances(call: Call) -> dict[str, Any]:
    if call.params.has("MaxResults") and call.params.strings("InstanceId"):
        raise Ec2Error("InvalidParameterCombination",
                       "The parameter instancesSet cannot be used with the parameter maxResults")
    rows, bodies = _described(call)
    by_body = {}
    for row, body in zip(rows, bodies, strict=True):
        body["_reservationId"] = row.reservation_id
        body["_ownerId"] = str(row.project_id)
        by_body[id(body)] = row
    matched = listing.apply(bodies, call.params, ib.FILTERS)
    shown, token = listing.page(matched, call.params)
    for body in bodies:
        del body["_reservationId"], body["_ownerId"]
    return {"reservationSet": ib.reservations([by_body[id(b)] for b in shown], shown),
            "nextToken": token}


STATUS_FILTERS: listing.Filters = {
    "availability-zone": listing.path("availabilityZone"),
    "instance-state-name": listing.path("instanceState", "name"),
    "instance-state-code": listing.path("instanceState", "code"),
    "instance-status.status": listing.path("instanceStatus", "status"),
    "instance-status.reachability": listing.path("instanceStatus", "details", "status"),
    "system-status.status": listing.path("systemStatus", "status"),
    "system-status.reachability": listing.path("systemStatus", "details", "status"),
}


def _ok(running: bool) -> dict[str, Any]:
    if not running:
        return {"status": "not-applicable", "details": []}
    return {"status": "ok", "details": [{"name": "reachability", "status": "passed"}]}


# EC2's two checks, as far as the control plane knows: the system check is the host's (its agent
# reports, or an admin forced it down), the instance check the guest's own power state, which
# only a host that reports can vouch for.
_HOST_SILENT = {"status": "impaired",
                "details": [{"name": "reachability", "status": "failed"}]}
_GUEST_UNKNOWN = {"status": "insufficient-data",
                  "details": [{"name": "reachability", "status": "insufficient-data"}]}


def _host_states(rows: list[Instance]) -> dict[str, str]:
    """Each host's Nova host_status (UP, UNKNOWN, DOWN…), in one query."""
    names = {r.host for r in rows if r.host}
    if not names:
        return {}
    return {service.host: hosts.host_status(service) for service in
            Service.objects.filter(host__in=names, binary=COMPUTE_BINARY)}


@action("DescribeInstanceStatus", "compute:servers:index")
def describe_instance_status(call: Call) -> dict[str, Any]:
    rows, bodies = _described(call)
    every = call.params.flag("IncludeAllInstances", False)
    host_states = _host_states(rows)
    items = []
    for row, body in zip(rows, bodies, strict=True):
        running = body["instanceState"]["name"] == ib.RUNNING[1]
        if not running and not every:
            continue
        silent = running and host_states.get(row.host or "") in (
            hosts.HOST_UNKNOWN, hosts.HOST_DOWN)
        items.append({"instanceId": body["instanceId"],
                      "availabilityZone": body["placement"]["availabilityZone"],
                      "instanceState": body["instanceState"], "eventsSet": [],
                      "instanceStatus": _GUEST_UNKNOWN if silent else _ok(running),
                      "systemStatus": _HOST_SILENT if silent else _ok(running)})
    matched = listing.apply(items, call.params, STATUS_FILTERS)
    shown, token = listing.page(matched, call.params)
    return {"instanceStatusSet": shown, "nextToken": token}


# --- Start, Stop, Reboot, Terminate


def _incorrect(instance: Instance, state: tuple[int, str], verb: str) -> Ec2Error:
    return Ec2Error("IncorrectInstanceState",
                    f"The instance '{resources.id_of(resources.INSTANCE, instance.pk)}' is not "
                    f"in a state from which it can be {verb} (it is {state[1]}).")


def _change(call: Call, operation: str, done: tuple[int, str],
            verb: str) -> list[dict[str, Any]]:
    """Perform `operation` on each instance named, after checking every one first (EC2 changes
    none when one cannot): one already `done` is left as it is."""
    chosen = ib.find_all(_ids(call.params), ib.live(call.ctx))
    dry_run(call.params)
    before = {}
    plans = {}
    for row in chosen:
        state = ib.state_of(row)
        before[row.pk] = state
        if state == done:
            continue
        plan = _steps(operation, row)
        if plan is None:
            raise _incorrect(row, state, verb)
        plans[row.pk] = plan
        try:
            ensure_unlocked(call.ctx, row)
        except errors.Conflict as exc:
            raise Ec2Error("OperationNotPermitted", exc.message) from exc
    for row in chosen:
        for step in plans.get(row.pk, []):
            try:
                operations.perform(call.ctx, row, step)
            except errors.Conflict as exc:
                raise _incorrect(row, ib.state_of(row), verb) from exc
            row.refresh_from_db()
    return _state_changes(chosen, before)


def _steps(operation: str, row: Instance) -> list[str] | None:
    """The operations that carry out `operation` on the server, None when its state forbids.
    Starting one EC2 shows stopped but Nova does not call stopped: a resize waiting for its
    confirmation (a new instanceType, actions_instance_attributes) is confirmed, then started; a
    server in error is hard-rebooted, Nova's way out of an error."""
    if operation == "start" and row.task_state is None:
        if row.vm_state == states.RESIZED and row.power_state == msg.POWER_SHUTDOWN:
            return ["confirm_resize", "start"]
        if row.vm_state == states.ERROR and row.host:
            return ["reboot_hard"]
    op = operations.REGISTRY[operation]
    if not op.allows(row.vm_state, row.task_state) or (op.requires_host and not row.host):
        return None
    return [operation]


def _ids(params: Params) -> list[str]:
    ids = params.strings("InstanceId")
    if not ids:
        raise missing("InstanceId")
    return ids


def _state_changes(rows: list[Instance], before: dict[Any, tuple[int, str]]) -> list[dict]:
    now = {r.pk: r for r in Instance.objects.filter(pk__in=[r.pk for r in rows])}
    out = []
    for row in rows:
        current = now.get(row.pk)
        state = ib.TERMINATED if current is None else ib.state_of(current)
        out.append({"instanceId": resources.id_of(resources.INSTANCE, row.pk),
                    "previousState": ib.state_body(before[row.pk]),
                    "currentState": ib.state_body(state)})
    return out


@action("StartInstances", "compute:servers:start")
def start_instances(call: Call) -> dict[str, Any]:
    return {"instancesSet": _change(call, "start", ib.RUNNING, "started")}


@action("StopInstances", "compute:servers:stop")
def stop_instances(call: Call) -> dict[str, Any]:
    if call.params.flag("Hibernate", False):
        raise Ec2Error("UnsupportedHibernationConfiguration",
                       "Kumo's instances cannot hibernate: stop them without Hibernate.")
    # Force: EC2 pulls the power; Kumo's stop asks the guest to shut down, then powers it off.
    return {"instancesSet": _change(call, "stop", ib.STOPPED, "stopped")}


@action("RebootInstances", "compute:servers:reboot")
def reboot_instances(call: Call) -> dict[str, Any]:
    chosen = ib.find_all(_ids(call.params), ib.live(call.ctx))
    dry_run(call.params)
    op = operations.REGISTRY["reboot"]
    for row in chosen:
        if not op.allows(row.vm_state, row.task_state):
            raise _incorrect(row, ib.state_of(row), "rebooted")
    for row in chosen:
        try:
            operations.perform(call.ctx, row, "reboot")
        except errors.Conflict as exc:
            raise _incorrect(row, ib.state_of(row), "rebooted") \
                from exc
    return {"return": True}


@action("TerminateInstances", "compute:servers:delete")
def terminate_instances(call: Call) -> dict[str, Any]:
    # A terminated instance still described (the last hour) may be terminated again: no-op.
    chosen = ib.find_all(_ids(call.params), ib.visible(call.ctx))
    dry_run(call.params)
    before = {r.pk: ib.state_of(r) for r in chosen}
    for row in chosen:
        if row.locked and not row.deleted and not call.ctx.is_admin:
            raise Ec2Error("OperationNotPermitted",
                           f"The instance '{resources.id_of(resources.INSTANCE, row.pk)}' may "
                           "not be terminated. Modify its 'disableApiTermination' instance "
                           "attribute and try again.")
    for row in chosen:
        if row.deleted:
            continue
        try:
            servers.delete_server(call.ctx, row)
        except errors.Conflict as exc:
            raise _incorrect(row, before[row.pk], "terminated") from exc
    return {"instancesSet": _state_changes(chosen, before)}
