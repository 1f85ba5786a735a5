"""What every Neutron resource module shares: list filters, lookups that answer Neutron's 404s,
the policy checks, and the readers of request attributes that turn bad input into a 400.

Neutron's rules kept here: a repeated filter parameter is OR, different parameters AND; an
attribute the resource does not have is refused ("Unrecognized attribute(s)"); a non-admin names no
other project than their own; a resource of another project the caller cannot see is missing
(404), one they can see but do not own (a shared network) is refused (403).
"""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from django.db import transaction
from django.db.models import QuerySet

from cloud import errors
from cloud.identity import policy
from cloud.identity.context import RequestContext
from cloud.identity.models import Project
from cloud.ids import parse_uuid
from cloud.validation import parse_bool

Filters = Mapping[str, Sequence[str]]
FilterSpec = dict[str, tuple[str, Callable[..., Any]]]

# Owners of the ports the network service makes for itself (Neutron's DEVICE_OWNER_*).
DHCP = "network:dhcp"
ROUTER_INTERFACE = "network:router_interface"
ROUTER_GATEWAY = "network:router_gateway"
FLOATING_IP = "network:floatingip"
L3_OWNERS = (ROUTER_INTERFACE, ROUTER_GATEWAY, FLOATING_IP)


def authorize_read(ctx: RequestContext) -> None:
    if not policy.allowed(ctx, "network:get"):
        raise errors.Forbidden("Policy doesn't allow network:get to be performed.")


def authorize(ctx: RequestContext, action: str, rule: str = "network:write") -> None:
    """A write: readers are refused with Neutron's PolicyNotAuthorized, as the compute API does."""
    if not policy.allowed(ctx, rule):
        raise errors.Forbidden(f"rule:{action} is disallowed by policy",
                               neutron_type="PolicyNotAuthorized")


def as_bool(value: str) -> bool:
    return parse_bool(value, f"'{value}' cannot be converted to boolean")


def ids(values: Sequence[str]) -> list[uuid.UUID]:
    # A value that is not a UUID cannot name anything: it matches nothing rather than failing.
    return [parsed for parsed in map(parse_uuid, values) if parsed is not None]


def filter_by(queryset: QuerySet, filters: Filters, fields: FilterSpec) -> QuerySet:
    """Neutron semantics: a repeated parameter is OR, different parameters are AND."""
    for param, (field, convert) in fields.items():
        values = filters.get(param)
        if not values:
            continue
        try:
            if convert is ids:
                wanted: list[Any] = ids(values)
            else:
                wanted = [convert(v) for v in values]
        except ValueError as exc:
            raise errors.BadRequest(f"Invalid input for {param}: {exc}") from None
        if any(v is None for v in wanted):
            queryset = queryset.filter(**{f"{field}__isnull": True})
        else:
            queryset = queryset.filter(**{f"{field}__in": wanted})
    return queryset


def nullable(value: str) -> str | None:
    """A filter value where Neutron's "" (or the literal None) asks for a null column."""
    return None if value in ("", "None", "null") else value


def not_found(kind: str, noun: str, ident: object) -> errors.NotFound:
    return errors.NotFound(f"{noun} {ident} could not be found.", neutron_type=kind)


def one(queryset: QuerySet, ident: object, kind: str, noun: str) -> Any:
    parsed = parse_uuid(str(ident))
    found = queryset.filter(pk=parsed).first() if parsed else None
    if found is None:
        raise not_found(kind, noun, ident)
    return found


def owns(ctx: RequestContext, project_id: object) -> bool:
    return ctx.is_admin or (project_id is not None and str(project_id) == ctx.project_id)


def check_owner(ctx: RequestContext, project_id: object, action: str) -> None:
    """A resource the caller sees but does not own (a shared or external network)."""
    if not owns(ctx, project_id):
        raise errors.Forbidden(f"rule:{action} is disallowed by policy",
                               neutron_type="PolicyNotAuthorized")


# --- request attributes


def attrs(body: object, allowed: Iterable[str], *, read_only: Iterable[str] = ()) -> dict:
    """The resource's attributes, refusing unknown ones and ones that cannot change."""
    if not isinstance(body, dict):
        raise errors.BadRequest("Resource body required")
    fixed = [key for key in body if key in set(read_only)]
    if fixed:
        raise errors.BadRequest(f"Cannot update read-only attribute {fixed[0]}")
    unknown = sorted(key for key in body if key not in set(allowed))
    if unknown:
        raise errors.BadRequest(f"Unrecognized attribute(s) '{', '.join(map(str, unknown))}'")
    return body


def invalid(name: str, value: object, why: str) -> errors.BadRequest:
    return errors.BadRequest(f"Invalid input for {name}. Reason: {why}",
                             neutron_type="HTTPBadRequest")


def text(body: Mapping, name: str, default: str = "", *, max_len: int = 255) -> str:
    value = body.get(name, default)
    if value is None and default == "":
        return ""
    if not isinstance(value, str):
        raise invalid(name, value, f"'{value}' is not a valid string.")
    if len(value) > max_len:
        raise invalid(name, value, f"'{value[:40]}…' exceeds maximum length of {max_len}.")
    return value


def boolean(body: Mapping, name: str, default: bool) -> bool:
    value = body.get(name, default)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise invalid(name, value, f"'{value}' cannot be converted to boolean.")


def integer(value: object, name: str, low: int, high: int) -> int:
    if isinstance(value, bool):
        raise invalid(name, value, f"'{value}' is not an integer.")
    try:
        number = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):
        raise invalid(name, value, f"'{value}' is not an integer.") from None
    if isinstance(value, float) and value != number:
        raise invalid(name, value, f"'{value}' is not an integer.")
    if not low <= number <= high:
        raise invalid(name, value, f"'{value}' is not in range {low} through {high}.")
    return number


def uuid_value(value: object, name: str) -> str:
    parsed = parse_uuid(value) if isinstance(value, str) else None
    if parsed is None:
        raise invalid(name, value, f"'{value}' is not a valid UUID.")
    return str(parsed)


def ipv4(value: object, name: str) -> ipaddress.IPv4Address:
    if isinstance(value, str):
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            pass
        else:
            if isinstance(address, ipaddress.IPv4Address):
                return address
            raise invalid(name, value, "IPv6 is not supported yet.")
    raise invalid(name, value, f"'{value}' is not a valid IP address.")


def ip_any(value: object, name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if isinstance(value, str):
        try:
            return ipaddress.ip_address(value)
        except ValueError:
            pass
    raise invalid(name, value, f"'{value}' is not a valid IP address.")


def cidr(value: object, name: str, *, strict: bool = True) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    if isinstance(value, str) and "/" in value:
        try:
            network = ipaddress.ip_network(value, strict=False)
        except ValueError:
            pass
        else:
            if strict and str(network) != value:
                raise invalid(name, value, f"'{value}' isn't a recognized IP subnet cidr, "
                                           f"'{network}' is recommended")
            return network
    raise invalid(name, value, f"'{value}' is not a valid IP subnet.")


def object_list(value: object, name: str) -> list:
    if not isinstance(value, list):
        raise invalid(name, value, f"'{value}' is not a list.")
    return value


def owner_of(ctx: RequestContext, body: Mapping) -> str | None:
    """The project a new resource belongs to: the caller's, or one an admin names."""
    named = {body[key] for key in ("project_id", "tenant_id") if body.get(key) is not None}
    if len(named) > 1:
        raise errors.BadRequest("'project_id' and 'tenant_id' do not match")
    if not named:
        return ctx.project_id
    (project_id,) = named
    if not isinstance(project_id, str):
        raise invalid("project_id", project_id, f"'{project_id}' is not a valid string.")
    if project_id == ctx.project_id:
        return project_id
    if not ctx.is_admin:
        raise errors.BadRequest("Specifying 'project_id' or 'tenant_id' other than the "
                                "authenticated project in request requires admin privileges")
    if not Project.objects.filter(pk=project_id).exists():
        raise errors.BadRequest(f"Project {project_id} could not be found.")
    return project_id


def bulk(create: Callable[[RequestContext, object], Any], ctx: RequestContext,
         items: object) -> list[Any]:
    """Neutron's bulk create ({"networks": [{…}, {…}]}): all of them or none."""
    if not isinstance(items, list) or not items:
        raise errors.BadRequest("Bulk create needs a non-empty list of resources.")
    with transaction.atomic():
        return [create(ctx, item) for item in items]
