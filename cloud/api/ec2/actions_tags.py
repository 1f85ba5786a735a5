"""Tags: CreateTags, DeleteTags, DescribeTags over every kind EC2 names here (where each keeps its
tags: tags.py).

An id is read back within the caller's project (EC2 is one account's view: another project's
resource is the kind's NotFound, as it is in the Describe of that kind); images also include the
public and shared ones the project sees, whose change Glance then refuses to a non-owner. Each
write goes through the kind's own service with that service's policy rule, so a reader's
CreateTags is refused as their metadata POST is."""

from __future__ import annotations

from typing import Any

from django.db.models import Model, QuerySet

from cloud import errors
from cloud.compute.models import Instance
from cloud.identity.context import RequestContext
from cloud.images.models import Image
from cloud.images.visibility import visible_images
from cloud.network.models import FloatingIp, Network, SecurityGroup, Subnet
from cloud.volumes.models import Volume, VolumeSnapshot

from . import listing, resources, tags
from .actions_instances import dry_run
from .errors import Ec2Error, missing, translate
from .params import Params
from .registry import Call, action

# EC2's resource-type for each kind, in DescribeTags' order.
TYPES: dict[str, tuple[resources.Kind, str, type[Model]]] = {
    "i": (resources.INSTANCE, "instance", Instance),
    "ami": (resources.IMAGE, "image", Image),
    "vol": (resources.VOLUME, "volume", Volume),
    "snap": (resources.SNAPSHOT, "snapshot", VolumeSnapshot),
    "sg": (resources.SECURITY_GROUP, "security-group", SecurityGroup),
    "eipalloc": (resources.ADDRESS, "elastic-ip", FloatingIp),
    "vpc": (resources.VPC, "vpc", Network),
    "subnet": (resources.SUBNET, "subnet", Subnet),
}

FILTERS: listing.Filters = {
    "key": listing.path("key"),
    "value": listing.path("value"),
    "resource-id": listing.path("resourceId"),
    "resource-type": listing.path("resourceType"),
}


def owned(ctx: RequestContext, prefix: str) -> QuerySet[Any]:
    """The rows of kind `prefix` the project's EC2 ids name."""
    if prefix == "ami":
        return images_seen(ctx)
    rows = TYPES[prefix][2].objects.filter(project_id=ctx.project_id)
    if prefix == "i":
        rows = rows.filter(deleted=False)
    return rows


def images_seen(ctx: RequestContext) -> QuerySet[Image]:
    """The images the project sees by id, as Glance's GET /v2/images/{id} (an admin: all; a
    change to another project's image is then Glance's to refuse or allow)."""
    return visible_images(ctx)


def _resolve(ctx: RequestContext, ids: list[str]) -> list[tuple[resources.Kind, Any]]:
    """Each id as (kind, uuid); an unknown prefix is InvalidID, a missing one the kind's
    NotFound, before anything changes."""
    out = []
    for value in ids:
        prefix = value.partition("-")[0]
        if prefix not in TYPES:
            raise Ec2Error("InvalidID", f"The ID '{value}' is not valid")
        kind = TYPES[prefix][0]
        out.append((kind, resources.find(kind, value, owned(ctx, prefix)).pk))
    return out


def _tag_list(params: Params, *, need_key: bool = True) -> list[tuple[str, str | None]]:
    pairs = []
    for tag in params.items("Tag"):
        key = tag.required("Key") if need_key else tag.get("Key")
        if key is None:
            continue
        pairs.append((key, tag.get("Value")))
    return pairs


def _apply(kind: resources.Kind, change: Any) -> None:
    try:
        change()
    except errors.NotFound as exc:
        raise translate(exc, kind[1]) from exc
    except errors.KumoError as exc:
        raise translate(exc) from exc


@action("CreateTags", None)
def create_tags(call: Call) -> dict[str, Any]:
    ids = call.params.strings("ResourceId")
    if not ids:
        raise missing("ResourceId.1")
    pairs = _tag_list(call.params)
    if not pairs:
        raise missing("Tag.1.Key")
    wanted = {key: value or "" for key, value in pairs}
    resolved = _resolve(call.ctx, ids)
    dry_run(call.params)
    for kind, uuid in resolved:
        _apply(kind, lambda kind=kind, uuid=uuid: tags.set_tags(call.ctx, kind, uuid, wanted))
    return {"return": True}


@action("DeleteTags", None)
def delete_tags(call: Call) -> dict[str, Any]:
    ids = call.params.strings("ResourceId")
    if not ids:
        raise missing("ResourceId.1")
    given = _tag_list(call.params)
    resolved = _resolve(call.ctx, ids)
    dry_run(call.params)
    for kind, uuid in resolved:
        doomed: dict[str, str | None] = dict(given)
        if not given:  # no Tag.N: every tag of the resource
            doomed = {t["key"]: None for t in tags.tags_for(kind, [uuid])[str(uuid)]}
        _apply(kind, lambda kind=kind, uuid=uuid, doomed=doomed:
               tags.delete_tags(call.ctx, kind, uuid, doomed))
    return {"return": True}


def _wanted_types(params: Params) -> set[str] | None:
    """The kinds a resource-type / resource-id filter allows, to skip the others' queries."""
    allowed: set[str] | None = None
    for spec in params.items("Filter"):
        name, values = spec.get("Name"), spec.strings("Value")
        if name == "resource-type" and not any("*" in v or "?" in v for v in values):
            found = {p for p, t in TYPES.items() if t[1] in values}
        elif name == "resource-id" and not any("*" in v or "?" in v for v in values):
            found = {v.partition("-")[0] for v in values}
        else:
            continue
        allowed = found if allowed is None else allowed & found
    return allowed


@action("DescribeTags", None)
def describe_tags(call: Call) -> dict[str, Any]:
    dry_run(call.params)
    allowed = _wanted_types(call.params)
    items: list[dict[str, Any]] = []
    for prefix, (kind, type_name, _) in TYPES.items():
        if allowed is not None and prefix not in allowed:
            continue
        rows = owned(call.ctx, prefix)
        if prefix == "ami":
            rows = rows.filter(owner_id=call.ctx.project_id)  # the account's own images
        uuids = list(rows.values_list("pk", flat=True))
        found = tags.tags_for(kind, uuids)
        for uuid in uuids:
            for tag in found[str(uuid)]:
                items.append({"resourceId": resources.id_of(kind, uuid),
                              "resourceType": type_name, **tag})
    items = listing.apply(items, call.params, FILTERS)
    chosen, token = listing.page(items, call.params)
    return {"tagSet": chosen, "nextToken": token}

