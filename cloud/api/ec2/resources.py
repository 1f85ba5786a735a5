"""EC2 ids and Kumo's rows, both ways. `cloud.ids.ec2_id` makes an id from a uuid; here an id a
client sent is read back through a query set the caller has already narrowed to what the project
may see, so another project's resource answers `<Kind>.NotFound`, as does a malformed id of a
kind EC2 does not check for shape (`MALFORMED`)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from cloud.ids import ec2_id, ec2_uuid_range

from .errors import Ec2Error, not_found

# prefix, the NotFound code, the words of its message
INSTANCE = ("i", "InvalidInstanceID.NotFound", "instance ID")
IMAGE = ("ami", "InvalidAMIID.NotFound", "image id")
VOLUME = ("vol", "InvalidVolume.NotFound", "volume")
SNAPSHOT = ("snap", "InvalidSnapshot.NotFound", "snapshot")
SECURITY_GROUP = ("sg", "InvalidGroup.NotFound", "security group")
ADDRESS = ("eipalloc", "InvalidAllocationID.NotFound", "allocation ID")
VPC = ("vpc", "InvalidVpcID.NotFound", "vpc ID")
SUBNET = ("subnet", "InvalidSubnetID.NotFound", "subnet ID")
ASSOCIATION = ("eipassoc", "InvalidAssociationID.NotFound", "association ID")
RESERVATION = ("r", "InvalidReservationID.NotFound", "reservation ID")

Kind = tuple[str, str, str]

# Kinds whose ids EC2 checks for shape before looking them up: a value that is not the prefix and
# 8 or 17 hex digits is `<Kind>.Malformed`, not NotFound (add a kind here to make it so).
MALFORMED = {
    INSTANCE[0]: "InvalidInstanceID.Malformed",
    VOLUME[0]: "InvalidVolumeID.Malformed",
    SNAPSHOT[0]: "InvalidSnapshotID.Malformed",
    SECURITY_GROUP[0]: "InvalidGroupId.Malformed",
    VPC[0]: "InvalidVpcID.Malformed",
    SUBNET[0]: "InvalidSubnetID.Malformed",
}
_HEX = frozenset("0123456789abcdef")


def check_id(kind: Kind, value: str) -> None:
    """Refuse an id of `kind` that cannot be one with the kind's Malformed code, if it has one."""
    code = MALFORMED.get(kind[0])
    head, _, digits = value.partition("-")
    if code is not None and (head != kind[0] or len(digits) not in (8, 17)
                             or not set(digits.lower()) <= _HEX):
        raise Ec2Error(code, f'Invalid id: "{value}" (expecting "{kind[0]}-...")')


def id_of(kind: Kind, value: Any) -> str:
    """The EC2 id of the row (or uuid) `value` under `kind`."""
    return ec2_id(kind[0], getattr(value, "pk", value))


def find(kind: Kind, value: str, rows: QuerySet[Any], field: str = "pk") -> Any:
    """The row of `rows` whose EC2 id is `value`, or `kind`'s NotFound (Malformed, for a kind
    of MALFORMED, when `value` cannot be an id)."""
    check_id(kind, value)
    bounds = ec2_uuid_range(kind[0], value)
    if bounds is not None:
        low, high = bounds
        found = rows.filter(**{f"{field}__gte": low, f"{field}__lte": high}).first()
        if found is not None:
            return found
    raise not_found(kind[1], kind[2], value)


def find_all(kind: Kind, values: list[str], rows: QuerySet[Any],
             field: str = "pk") -> list[Any]:
    """Each of `values` as a row, in order; the first unknown one is `kind`'s NotFound (EC2
    refuses a Describe naming any id it does not know)."""
    return [find(kind, value, rows, field) for value in values]


def narrow(kind: Kind, values: list[str], loaded: list[Any]) -> list[Any]:
    """The rows of `loaded` (already read: what the project sees) that `values` name, in their
    order there; the first id none of them has is `kind`'s NotFound (Malformed as `find`). No
    query: a Describe that has read its rows matches the ids against them."""
    if not values:
        return loaded
    by_id = {id_of(kind, row): row for row in loaded}
    for value in values:
        check_id(kind, value)
        if value.lower() not in by_id:
            raise not_found(kind[1], kind[2], value)
    wanted = {value.lower() for value in values}
    return [row for row in loaded if id_of(kind, row) in wanted]
