"""Images (AMIs): DescribeImages, CreateImage, DeregisterImage, DescribeImageAttribute over
Glance's images.

Which images: without ImageId.N, Glance's own list for the project (public, its own, the shared
ones it accepted; an image hidden with os_hidden only by id); by id, every image the project may
see, as GET /v2/images/{id}. Another project's private image is InvalidAMIID.NotFound.

An AMI's fields from Glance's: state from status (queued/saving/importing: pending, active:
available, killed: failed, deactivated: disabled and listed only with IncludeDisabled), owner the
owning project's id, isPublic from visibility. A volume-backed server's snapshot (a data-less
image whose `block_device_mapping` property names volume snapshots) is an EBS image and its
mapping is shown with snap- ids; any other image is instance-store.

CreateImage is Nova's createImage (operations.perform "snapshot", the runner POST
/servers/{id}/action uses), DeregisterImage Glance's delete_image, ModifyImageAttribute Glance's
image patch and members."""

from __future__ import annotations

import json
import re
from typing import Any

from django.db.models import QuerySet

from cloud import errors
from cloud.compute import operations, servers
from cloud.compute.models import Instance
from cloud.compute.volume_images import ROOT_DEVICE, is_volume_snapshot
from cloud.ids import parse_uuid
from cloud.images import images as image_service
from cloud.images import members as image_members
from cloud.images.models import (
    ACTIVE,
    DEACTIVATED,
    IMPORTING,
    KILLED,
    QUEUED,
    SAVING,
    UPLOADING,
    Image,
    ImageMember,
)
from cloud.images.visibility import listed_images, visible_images
from cloud.volumes.models import VolumeSnapshot

from . import listing, resources, tags
from .actions_instances import dry_run
from .errors import Ec2Error, invalid, missing, translate
from .params import Params
from .registry import Call, action

STATES = {QUEUED: "pending", SAVING: "pending", UPLOADING: "pending", IMPORTING: "pending",
          ACTIVE: "available", KILLED: "failed", DEACTIVATED: "disabled"}
# Glance's architecture property (libosinfo's names) as EC2's values.
ARCHITECTURES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64",
                 "i386": "i386", "i686": "i386"}
# EC2's rule for AMI names: 3-128 of these characters.
NAME = re.compile(r"^[A-Za-z0-9()\[\] ./\-'@_]{3,128}$")

FILTERS: listing.Filters = {
    "image-id": listing.path("imageId"),
    "name": listing.path("name"),
    "description": listing.path("description"),
    "state": listing.path("imageState"),
    "owner-id": listing.path("imageOwnerId"),
    "is-public": listing.path("isPublic"),
    "architecture": listing.path("architecture"),
    "root-device-type": listing.path("rootDeviceType"),
    "root-device-name": listing.path("rootDeviceName"),
    "image-type": listing.path("imageType"),
    "platform": listing.path("platform"),
    "hypervisor": listing.path("hypervisor"),
    "virtualization-type": listing.path("virtualizationType"),
    "block-device-mapping.snapshot-id": listing.path("blockDeviceMapping", "ebs", "snapshotId"),
    "block-device-mapping.device-name": listing.path("blockDeviceMapping", "deviceName"),
    "source-instance-id": listing.path("sourceInstanceId"),
    "creation-date": listing.path("creationDate"),
    # No image has an alias (amazon, aws-marketplace): such a filter matches none, as it would
    # in a region without them.
    "owner-alias": listing.path("imageOwnerAlias"),
}


def _mappings(image: Image) -> list[dict[str, Any]]:
    """The image's block device mapping in EC2's shape (only an EBS image has one)."""
    if not is_volume_snapshot(image):
        return []
    raw = image.properties.get("block_device_mapping")
    try:
        bdms = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return []
    out = []
    for bdm in bdms if isinstance(bdms, list) else []:
        if not isinstance(bdm, dict) or bdm.get("source_type") != "snapshot":
            continue
        snapshot = bdm.get("snapshot_id")
        out.append({
            "deviceName": bdm.get("device_name"),
            "ebs": {"snapshotId": resources.id_of(resources.SNAPSHOT, snapshot)
                    if snapshot else None,
                    "volumeSize": bdm.get("volume_size"),
                    "deleteOnTermination": bool(bdm.get("delete_on_termination")),
                    "volumeType": "standard", "encrypted": False},
        })
    return out


def describe(image: Image, tag_set: list[dict[str, str]]) -> dict[str, Any]:
    props = image.properties or {}
    ebs = is_volume_snapshot(image)
    owner = str(image.owner_id) if image.owner_id else None
    source = props.get("instance_uuid")
    item: dict[str, Any] = {
        "imageId": resources.id_of(resources.IMAGE, image.pk),
        "imageLocation": f"{owner or 'kumo'}/{image.name or image.pk}",
        "imageState": STATES.get(image.status, "error"),
        "imageOwnerId": owner,
        "isPublic": image.visibility == "public",
        "architecture": ARCHITECTURES.get(str(props.get("architecture", "x86_64")).lower(),
                                          "x86_64"),
        "imageType": "machine",
        "name": image.name,
        "description": props.get("description"),
        "rootDeviceType": "ebs" if ebs else "instance-store",
        "rootDeviceName": props.get("root_device_name") or ROOT_DEVICE,
        "blockDeviceMapping": _mappings(image),
        "virtualizationType": "hvm",
        "hypervisor": "kvm",
        "platform": "windows" if str(props.get("os_type", "")).lower() == "windows" else None,
        "platformDetails": "Windows" if props.get("os_type") == "windows" else "Linux/UNIX",
        "creationDate": image.created_at.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "sourceInstanceId": resources.id_of(resources.INSTANCE, source) if _uuid(source)
        else None,
        "tagSet": tag_set,
    }
    if image.status == KILLED:
        item["stateReason"] = {"code": "Server.InternalError",
                               "message": "The image's upload failed."}
    return item


def _uuid(value: Any) -> bool:
    return value is not None and parse_uuid(value) is not None


def describe_all(images: list[Image]) -> list[dict[str, Any]]:
    found = tags.tags_for(resources.IMAGE, [i.pk for i in images])
    return [describe(i, found[str(i.pk)]) for i in images]


def _owners(call: Call, rows: QuerySet[Image]) -> QuerySet[Image]:
    owners = call.params.strings("Owner")
    if not owners:
        return rows
    projects = {call.ctx.project_id if o == "self" else o for o in owners}
    return rows.filter(owner_id__in=projects)


def _executable_by(call: Call, rows: QuerySet[Image]) -> QuerySet[Image]:
    """ExecutableBy: `all` the public images, `self` those the project may launch because it
    owns them or they are shared with it, an account id those shared with that project."""
    users = call.params.strings("ExecutableBy")
    if not users:
        return rows
    chosen = Image.objects.none()
    for user in users:
        if user == "all":
            chosen = chosen | rows.filter(visibility="public")
        else:
            project = call.ctx.project_id if user == "self" else user
            members = ImageMember.objects.filter(project_id=project).values("image_id")
            chosen = chosen | rows.filter(owner_id=project) | rows.filter(
                visibility="shared", pk__in=members)
    return chosen.distinct()


@action("DescribeImages", "image:get")
def describe_images(call: Call) -> dict[str, Any]:
    dry_run(call.params)
    ids = call.params.strings("ImageId")
    if ids:
        rows: QuerySet[Image] = visible_images(call.ctx)
        chosen = resources.find_all(resources.IMAGE, ids, rows)
        rows = Image.objects.filter(pk__in=[i.pk for i in chosen])
    else:
        rows = listed_images(call.ctx, None, None).filter(os_hidden=False)
        if not call.params.flag("IncludeDisabled", False):
            rows = rows.exclude(status=DEACTIVATED)
    rows = _executable_by(call, _owners(call, rows))
    images = list(rows.order_by("created_at", "id"))
    items = listing.apply(describe_all(images), call.params, FILTERS)
    chosen_page, token = listing.page(items, call.params)
    return {"imagesSet": chosen_page, "nextToken": token}


def _image_of(call: Call, value: str) -> Image:
    return resources.find(resources.IMAGE, value, visible_images(call.ctx))


@action("CreateImage", "compute:servers:create_image")
def create_image(call: Call) -> dict[str, Any]:
    params = call.params
    instance_id = params.required("InstanceId")
    name = params.required("Name")
    if not NAME.match(name):
        raise Ec2Error("InvalidAMIName.Malformed",
                       f"AMI names must be between 3 and 128 characters long, and may contain "
                       f"letters, numbers, '(', ')', '.', '-', '/', '_', '[', ']', ' ', '@' and "
                       f"\"'\": {name!r} is not such a name.")
    description = params.get("Description")
    if description is not None and len(description) > 255:
        raise invalid("Description", description[:20] + "…", "It is at most 255 characters.")
    params.flag("NoReboot", False)  # Kumo's snapshot never reboots the guest: both are honoured
    if params.items("BlockDeviceMapping"):
        raise invalid("BlockDeviceMapping", "…", "Kumo's images keep the instance's own block "
                      "devices; send no BlockDeviceMapping.")
    image_tags = tags.tag_specifications(params, "image")
    snapshot_tags = tags.tag_specifications(params, "snapshot")
    rows = Instance.objects.filter(project_id=call.ctx.project_id, deleted=False)
    row = resources.find(resources.INSTANCE, instance_id, rows)
    dry_run(params)
    if Image.objects.filter(owner_id=call.ctx.project_id, name=name).exists():
        raise Ec2Error("InvalidAMIName.Duplicate",
                       f"AMI name {name} is already in use by an image of this project.")
    metadata = {tags.IMAGE_PREFIX + key: value for key, value in image_tags.items()}
    if description:
        metadata["description"] = description
    try:
        instance = servers.get_server(call.ctx, str(row.pk))
        image_id = operations.perform(call.ctx, instance, "snapshot", name=name,
                                      metadata=metadata)
    except errors.NotFound as exc:
        raise translate(exc, resources.INSTANCE[1]) from exc
    except errors.Conflict as exc:
        raise Ec2Error("IncorrectInstanceState", exc.message) from exc
    except errors.KumoError as exc:
        raise translate(exc) from exc
    if snapshot_tags:
        _tag_snapshots(call, image_id, snapshot_tags)
    return {"imageId": resources.id_of(resources.IMAGE, image_id)}


def _tag_snapshots(call: Call, image_id: str, wanted: dict[str, str]) -> None:
    """TagSpecification of type snapshot: the volume snapshots a volume-backed server's image
    names (an image of a local disk has none, as an instance-store AMI has none)."""
    image = Image.objects.get(pk=image_id)
    for mapping in _mappings(image):
        snapshot = mapping["ebs"]["snapshotId"]
        if snapshot:
            uuid = resources.find(resources.SNAPSHOT, snapshot,
                                  VolumeSnapshot.objects.filter(project_id=call.ctx.project_id))
            try:
                tags.set_tags(call.ctx, resources.SNAPSHOT, uuid.pk, wanted)
            except errors.KumoError as exc:
                raise translate(exc) from exc


@action("DeregisterImage", "image:delete")
def deregister_image(call: Call) -> dict[str, Any]:
    image = _image_of(call, call.params.required("ImageId"))
    if call.params.flag("DeleteAssociatedSnapshots", False):
        raise invalid("DeleteAssociatedSnapshots", "true", "Delete the snapshots with "
                      "DeleteSnapshot: Kumo leaves them, as Nova does.")
    dry_run(call.params)
    try:
        image_service.delete_image(call.ctx, image.pk)
    except errors.NotFound as exc:
        raise translate(exc, resources.IMAGE[1]) from exc
    except errors.KumoError as exc:
        raise translate(exc) from exc
    return {"return": True}


def _launch_permissions(image: Image) -> list[dict[str, str]]:
    if image.visibility in ("public", "community"):
        return [{"group": "all"}]
    if image.visibility == "shared":
        return [{"userId": str(p)} for p in
                image.members.order_by("created_at").values_list("project_id", flat=True)]
    return []


ATTRIBUTES = ("description", "launchPermission", "blockDeviceMapping", "kernel", "ramdisk",
              "productCodes", "sriovNetSupport", "bootMode", "tpmSupport", "uefiData",
              "lastLaunchedTime", "imdsSupport", "deregistrationProtection")


@action("DescribeImageAttribute", "image:get")
def describe_image_attribute(call: Call) -> dict[str, Any]:
    image = _image_of(call, call.params.required("ImageId"))
    attribute = call.params.required("Attribute")
    dry_run(call.params)
    if attribute not in ATTRIBUTES:
        raise invalid("Attribute", attribute, f"Use one of {', '.join(ATTRIBUTES)}.")
    answer: dict[str, Any] = {"imageId": resources.id_of(resources.IMAGE, image.pk)}
    if attribute == "description":
        answer["description"] = {"value": (image.properties or {}).get("description")}
    elif attribute == "launchPermission":
        if image.owner_id != call.ctx.project_id and not call.ctx.is_admin:
            # As EC2: only the owner reads who may launch its image.
            raise Ec2Error("AuthFailure", "Not authorized for image: "
                           f"{answer['imageId']}", 403)
        answer["launchPermission"] = _launch_permissions(image)
    elif attribute == "blockDeviceMapping":
        answer["blockDeviceMapping"] = _mappings(image)
    elif attribute == "productCodes":
        answer["productCodes"] = []
    return answer



# --- ModifyImageAttribute: the description property, and launch permissions as Glance's
# visibility and members (a user id is a project id; group `all` is visibility public, which
# Glance's image:publicize keeps to an admin). A project given launch permission is a Glance
# member whose answer is still pending: it sees and boots the image by id, and lists it once it
# accepts, as with `openstack image add project`.


def _permissions(specs: list[Params], where: str) -> list[tuple[str, str]]:
    out = []
    for spec in specs:
        user, group = spec.get("UserId"), spec.get("Group")
        if group is not None and group != "all":
            raise invalid(f"{where}.Group", group, "The only group is 'all'.")
        if user:
            out.append(("user", user))
        elif group:
            out.append(("group", group))
        else:
            raise missing(f"{where}.UserId")
    return out


def _modifications(params: Params) -> tuple[str | None, list[tuple[str, str]],
                                              list[tuple[str, str]]]:
    """The new description and the launch permissions to add and remove, from either of the
    request's forms (structures, or Attribute/OperationType/Value/UserId.N/UserGroup.N)."""
    described = params.struct("Description")
    description = described.get("Value") if described else None
    adds: list[tuple[str, str]] = []
    removes: list[tuple[str, str]] = []
    launch = params.struct("LaunchPermission")
    if launch is not None:
        adds += _permissions(launch.items("Add"), "LaunchPermission.Add")
        removes += _permissions(launch.items("Remove"), "LaunchPermission.Remove")
    attribute = params.get("Attribute")
    if attribute == "description":
        description = params.required("Value")
    elif attribute == "launchPermission":
        operation = params.required("OperationType")
        if operation not in ("add", "remove"):
            raise invalid("OperationType", operation, "Use add or remove.")
        given = [("user", u) for u in params.strings("UserId")]
        for group in params.strings("UserGroup"):
            if group != "all":
                raise invalid("UserGroup", group, "The only group is 'all'.")
            given.append(("group", group))
        (adds if operation == "add" else removes).extend(given)
    elif attribute is not None:
        raise invalid("Attribute", attribute, "Kumo changes description and launchPermission.")
    if description is None and not adds and not removes:
        raise missing("Description or LaunchPermission")
    if description is not None and len(description) > 255:
        raise invalid("Description", description[:20] + "…", "It is at most 255 characters.")
    return description, adds, removes


def _patch(call: Call, image: Image, path: str, value: str) -> None:
    image_service.update_image(call.ctx, image.pk, [{"op": "add", "path": path,
                                                      "value": value}])


@action("ModifyImageAttribute", "image:modify")
def modify_image_attribute(call: Call) -> dict[str, Any]:
    image = _image_of(call, call.params.required("ImageId"))
    description, adds, removes = _modifications(call.params)
    dry_run(call.params)
    try:
        if description is not None:
            _patch(call, image, "/description", description)
        for kind, value in adds:
            if kind == "group":
                _patch(call, image, "/visibility", "public")
                continue
            image.refresh_from_db()
            if image.visibility == "private":
                _patch(call, image, "/visibility", "shared")
            try:
                image_members.add_member(call.ctx, image.pk, value)
            except errors.Conflict:
                pass  # already permitted
        for kind, value in removes:
            if kind == "group":
                shared = ImageMember.objects.filter(image_id=image.pk).exists()
                _patch(call, image, "/visibility", "shared" if shared else "private")
                continue
            try:
                image_members.delete_member(call.ctx, image.pk, value)
            except errors.NotFound:
                pass  # not permitted already
    except errors.NotFound as exc:
        raise translate(exc, resources.IMAGE[1]) from exc
    except errors.KumoError as exc:
        raise translate(exc) from exc
    return {"return": True}


@action("ResetImageAttribute", "image:modify")
def reset_image_attribute(call: Call) -> dict[str, Any]:
    """launchPermission (the only attribute EC2 resets): the image private to its owner again,
    every Glance membership ended."""
    image = _image_of(call, call.params.required("ImageId"))
    attribute = call.params.required("Attribute")
    if attribute != "launchPermission":
        raise invalid("Attribute", attribute, "Only launchPermission can be reset.")
    dry_run(call.params)
    try:
        for project in list(image.members.values_list("project_id", flat=True)):
            image_members.delete_member(call.ctx, image.pk, str(project))
        _patch(call, image, "/visibility", "private")
    except errors.NotFound as exc:
        raise translate(exc, resources.IMAGE[1]) from exc
    except errors.KumoError as exc:
        raise translate(exc) from exc
    return {"return": True}
