"""EC2 tags: where each kind of resource keeps them, and the three things actions do with them.

One source of truth, visible from the OpenStack APIs as well:
- instances: Nova's server metadata (`openstack server show` lists them as properties); written
  through cloud.compute.server_metadata under the same policy rules as POST/DELETE
  /servers/{id}/metadata, so Nova's metadata-items quota, a locked server and a server in a
  state that refuses metadata changes refuse tags too;
- volumes and snapshots: Cinder's volume / snapshot metadata, through cloud.volumes' set_metadata
  and delete_metadata_item (policy volume:volumes:write / volume:snapshots:write);
- images: Glance properties named `ec2_tag:<Key>` (an image's other properties, such as
  `architecture`, `hw_*` or `block_device_mapping`, mean something to Nova, so a tag must not be
  able to set them), through Glance's update_image JSON patch (its owner check and image:modify);
- security groups, Elastic IPs (floating IPs), VPCs (networks) and subnets: Neutron's resources
  here carry no tags, so the pairs are rows of cloud.api.models.Ec2Tag, whose cascading foreign
  key deletes them with the resource; a write first looks the resource up through Neutron's
  service function and checks its update rule and ownership, as PUT on the resource would.

Deleting a resource therefore deletes its tags in every case (metadata and properties go with the
row). EC2's limits are checked here before any service sees the request: at most 50 tags per
resource, keys of 1-128 characters not starting with `aws:`, values of at most 256 characters
(Nova and Cinder store 255 at most; a 256-character value there is InvalidParameterValue).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

from django.db import transaction
from django.db.models import Model

from cloud import errors
from cloud.api.models import Ec2Tag
from cloud.compute import server_metadata, servers
from cloud.compute.models import Instance
from cloud.identity import policy
from cloud.identity.context import RequestContext
from cloud.images import images as image_service
from cloud.images.models import Image
from cloud.network import common as network_common
from cloud.network import floating_ips, networks, security_groups, subnets
from cloud.volumes import snapshots as snapshot_service
from cloud.volumes import volumes as volume_service
from cloud.volumes.models import Volume, VolumeSnapshot

from . import resources
from .errors import Ec2Error, invalid
from .params import Params

MAX_TAGS = 50
MAX_KEY = 128
MAX_VALUE = 256
IMAGE_PREFIX = "ec2_tag:"

Tags = list[dict[str, str]]

# Ec2Tag's foreign key for each Neutron kind, and the service function that finds the resource as
# the caller may see it, with the rule its update checks.
_NETWORK_KINDS: dict[str, tuple[str, Any, str]] = {
    resources.SECURITY_GROUP[0]: ("security_group", security_groups.get_group,
                                  "update_security_group"),
    resources.ADDRESS[0]: ("floating_ip", floating_ips.get_floating_ip, "update_floatingip"),
    resources.VPC[0]: ("network", networks.get_network, "update_network"),
    resources.SUBNET[0]: ("subnet", subnets.get_subnet, "update_subnet"),
}


# The row each metadata-keeping kind's tags live in.
_ROWS: dict[str, type[Model]] = {
    resources.INSTANCE[0]: Instance, resources.VOLUME[0]: Volume,
    resources.SNAPSHOT[0]: VolumeSnapshot, resources.IMAGE[0]: Image,
}


def _pairs(mapping: dict[str, Any]) -> Tags:
    return [{"key": key, "value": str(value)} for key, value in sorted(mapping.items())]


def tags_for(kind: resources.Kind, uuids: Iterable[Any]) -> dict[str, Tags]:
    """Each of `uuids` (as a string) -> its tags, sorted by key; one query whatever the count.
    The caller has already narrowed `uuids` to what the project may see."""
    wanted = [str(u) for u in uuids]
    out: dict[str, Tags] = {u: [] for u in wanted}
    if not wanted:
        return out
    prefix = kind[0]
    if prefix == resources.INSTANCE[0]:
        rows: Iterable[tuple[Any, dict]] = Instance.objects.filter(
            pk__in=wanted).values_list("uuid", "metadata")
    elif prefix == resources.VOLUME[0]:
        rows = Volume.objects.filter(pk__in=wanted).values_list("id", "metadata")
    elif prefix == resources.SNAPSHOT[0]:
        rows = VolumeSnapshot.objects.filter(pk__in=wanted).values_list("id", "metadata")
    elif prefix == resources.IMAGE[0]:
        rows = [(pk, {k[len(IMAGE_PREFIX):]: v for k, v in props.items()
                      if k.startswith(IMAGE_PREFIX)})
                for pk, props in Image.objects.filter(pk__in=wanted).values_list(
                    "id", "properties")]
    elif prefix in _NETWORK_KINDS:
        field = _NETWORK_KINDS[prefix][0]
        grouped: dict[str, dict[str, str]] = {}
        for owner, key, value in Ec2Tag.objects.filter(
                **{f"{field}_id__in": wanted}).values_list(f"{field}_id", "key", "value"):
            grouped.setdefault(str(owner), {})[key] = value
        rows = grouped.items()
    else:
        raise ValueError(f"EC2 tags: no storage for kind {kind}")
    for pk, mapping in rows:
        out[str(pk)] = _pairs(mapping or {})
    return out


def _check_key(key: str) -> None:
    if not key or len(key) > MAX_KEY:
        raise invalid("Tag.Key", key, f"A tag key is 1 to {MAX_KEY} characters long.")
    if key.lower().startswith("aws:"):
        raise invalid("Tag.Key", key, "Tag keys starting with 'aws:' are reserved for internal "
                      "use.")


def _check_tags(tags: dict[str, str]) -> None:
    for key, value in tags.items():
        _check_key(key)
        if len(value) > MAX_VALUE:
            raise invalid("Tag.Value", value[:20] + "…",
                          f"A tag value is at most {MAX_VALUE} characters long.")


def _limit(count: int) -> None:
    if count > MAX_TAGS:
        raise Ec2Error("TagLimitExceeded",
                       f"The maximum number of tags per resource ({MAX_TAGS}) would be exceeded.")


def _authorize(ctx: RequestContext, rule: str) -> None:
    if not policy.allowed(ctx, rule):
        raise errors.Forbidden(f"Policy doesn't allow {rule} to be performed.")


def set_tags(ctx: RequestContext, kind: resources.Kind, uuid: Any, tags: dict[str, str]) -> None:
    """Add `tags` to the resource, replacing the value of a key it already has. Raises Ec2Error
    for EC2's limits, cloud.errors for the service's refusals (NotFound: not visible)."""
    _check_tags(tags)
    if not tags:
        return
    prefix = kind[0]
    if prefix in _NETWORK_KINDS:
        _set_network_tags(ctx, prefix, uuid, tags)  # counts under its own transaction
        return
    if prefix not in _ROWS:
        raise ValueError(f"EC2 tags: no storage for kind {kind}")
    with transaction.atomic():
        # The row locked first, so two CreateTags cannot each count 49 and together make 51;
        # the service's own lock below is then taken again in this transaction.
        _ROWS[prefix].objects.select_for_update().filter(pk=uuid).first()
        current = {t["key"]: t["value"] for t in tags_for(kind, [uuid])[str(uuid)]}
        _limit(len({**current, **tags}))
        _write(ctx, prefix, uuid, tags)


def _write(ctx: RequestContext, prefix: str, uuid: Any, tags: dict[str, str]) -> None:
    if prefix == resources.INSTANCE[0]:
        instance = servers.get_server(ctx, str(uuid))
        _authorize(ctx, "compute:server_metadata:create")
        try:
            server_metadata.update_metadata(ctx, instance, tags)
        except errors.OverLimit as exc:
            raise Ec2Error("TagLimitExceeded", exc.message) from None
    elif prefix == resources.VOLUME[0]:
        volume_service.set_metadata(ctx, uuid, tags)
    elif prefix == resources.SNAPSHOT[0]:
        snapshot_service.set_metadata(ctx, uuid, tags)
    elif prefix == resources.IMAGE[0]:
        image_service.update_image(ctx, uuid, [
            {"op": "add", "path": "/" + _pointer(IMAGE_PREFIX + key), "value": value}
            for key, value in tags.items()])


def delete_tags(ctx: RequestContext, kind: resources.Kind, uuid: Any,
                tags: dict[str, str | None]) -> None:
    """Remove each key of `tags` whose value matches (None: whatever its value); a key the
    resource lacks, or whose value differs, is left alone, as EC2 does."""
    for key in tags:
        _check_key(key)
    prefix = kind[0]
    current = {t["key"]: t["value"] for t in tags_for(kind, [uuid])[str(uuid)]}
    doomed = [key for key, value in tags.items()
              if key in current and (value is None or current[key] == value)]
    if prefix == resources.INSTANCE[0]:
        instance = servers.get_server(ctx, str(uuid))
        _authorize(ctx, "compute:server_metadata:delete")
        for key in doomed:
            _ignore_missing(server_metadata.delete_item, ctx, instance, key)
    elif prefix == resources.VOLUME[0]:
        volume_service.get_volume(ctx, uuid)  # a foreign id is NotFound even with nothing to do
        for key in doomed:
            _ignore_missing(volume_service.delete_metadata_item, ctx, uuid, key)
    elif prefix == resources.SNAPSHOT[0]:
        snapshot_service.get_snapshot(ctx, uuid)
        for key in doomed:
            _ignore_missing(snapshot_service.delete_metadata_item, ctx, uuid, key)
    elif prefix == resources.IMAGE[0]:
        image_service.get_image(ctx, uuid)
        if doomed:
            image_service.update_image(ctx, uuid, [
                {"op": "remove", "path": "/" + _pointer(IMAGE_PREFIX + key)} for key in doomed])
    elif prefix in _NETWORK_KINDS:
        field = _network_resource(ctx, prefix, uuid)
        Ec2Tag.objects.filter(**{f"{field}_id": uuid}, key__in=doomed).delete()
    else:
        raise ValueError(f"EC2 tags: no storage for kind {kind}")


def _ignore_missing(delete: Any, *args: Any) -> None:
    # A concurrent delete of the same key took it first: the outcome the caller asked for.
    try:
        delete(*args)
    except errors.NotFound as exc:
        if "metadata" not in exc.message.lower():
            raise


def _pointer(key: str) -> str:
    """A property name as one JSON-pointer segment (RFC 6901), as Glance's patch reads it."""
    return key.replace("~", "~0").replace("/", "~1")


def _network_resource(ctx: RequestContext, prefix: str, uuid: Any) -> str:
    """Ec2Tag's field for the kind, after Neutron's own lookup and update checks."""
    field, get, rule = _NETWORK_KINDS[prefix]
    found = get(ctx, str(uuid))
    network_common.authorize(ctx, rule)
    network_common.check_owner(ctx, found.project_id, rule)
    return str(field)


def _set_network_tags(ctx: RequestContext, prefix: str, uuid: Any,
                      tags: dict[str, str]) -> None:
    field = _network_resource(ctx, prefix, uuid)
    with transaction.atomic():
        # The resource's row locked, so a concurrent CreateTags counts after this one.
        Ec2Tag._meta.get_field(field).related_model.objects.select_for_update().filter(
            pk=uuid).first()
        for key, value in tags.items():
            Ec2Tag.objects.update_or_create(**{f"{field}_id": UUID(str(uuid))}, key=key,
                                            defaults={"value": value})
        # Two concurrent CreateTags may each pass the count above; the total is what counts.
        # (raising inside the atomic block undoes this call's rows)
        _limit(Ec2Tag.objects.filter(**{f"{field}_id": uuid}).count())


def tag_specifications(params: Params, resource_type: str) -> dict[str, str]:
    """The tags TagSpecification.N gives resources of `resource_type` ("instance", "image",
    "volume", …), checked against EC2's limits; other types' specifications are ignored."""
    tags: dict[str, str] = {}
    for spec in params.items("TagSpecification"):
        if spec.get("ResourceType") != resource_type:
            continue
        for tag in spec.items("Tag"):
            key = tag.required("Key")
            tags[key] = tag.get("Value") or ""
    _check_tags(tags)
    _limit(len(tags))
    return tags
