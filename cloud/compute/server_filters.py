"""Listing servers: Nova's filters, sort keys and paging over the instances a caller may see.

Filters follow Nova's database layer: a few compare exactly (project, user, image, flavor, host,
vm_state, task_state, uuid, locked), `status` maps onto vm_state/task_state as Nova maps it, the tag
filters combine as Nova's do, `ip`/`ip6` match the server's fixed addresses, and every other filter
is a regular expression searched in the column's text (`name=^web` or `created_at=2026-05`). The API
layer decides which filters a caller may use at which microversion (cloud/api/compute/servers.py).

Regular expressions run here, in Python, over the rows the exact filters left: every database
speaks its own dialect, and a pattern valid for one is an error in another.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.db.models import Q, QuerySet

from cloud import errors
from cloud.identity.context import RequestContext
from cloud.ids import canonical_uuid, ref_id
from cloud.network.models import Port

from . import availability_zones, states
from .models import Instance, InstanceTag

# Nova's status of each (vm_state, task_state), as a task map per vm_state with a "default" entry:
# a status filter matches the vm_states whose map names it, and the task states it is shown for
# (no task state filter at all when it is the vm_state's default status).
_VM_STATES = (states.BUILDING, states.ACTIVE, states.STOPPED, states.PAUSED, states.SUSPENDED,
              states.RESIZED, states.ERROR, states.DELETED)
DEFAULT = "default"


def _status_map() -> dict[str, dict[str, str]]:
    table: dict[str, dict[str, str]] = {}
    for vm_state in _VM_STATES:
        default = states.status(vm_state, None)
        tasks = {DEFAULT: default}
        for task in sorted(states.TASK_STATES):
            shown = states.status(vm_state, task)
            if shown != default:
                tasks[task] = shown
        table[vm_state] = tasks
    return table


STATUS_MAP = _status_map()


def states_for_statuses(statuses: list[str]) -> tuple[list[str], list[str]]:
    """(vm_states, task_states) a list of statuses stands for, as Nova maps them; task_states
    holds DEFAULT when some status is a vm_state's own (then task states are not filtered)."""
    wanted = {s.lower() for s in statuses}
    vm_states: set[str] = set()
    task_states: set[str] = set()
    for vm_state, tasks in STATUS_MAP.items():
        for task, status in tasks.items():
            if status.lower() in wanted:
                vm_states.add(vm_state)
                task_states.add(task)
    return sorted(vm_states), sorted(task_states)


# Sort keys a list may name, and the column each one orders by (None: accepted, no column here,
# so it orders nothing, as Nova ignores the keys it deprecated).
SORT_KEYS: dict[str, str | None] = {
    "access_ip_v4": "access_ip_v4", "access_ip_v6": "access_ip_v6", "auto_disk_config": None,
    "availability_zone": "availability_zone", "config_drive": "config_drive",
    "created_at": "created_at", "display_description": "description",
    "display_name": "display_name", "host": "host", "hostname": "hostname",
    "image_ref": "image_ref", "instance_type_id": "flavor_id", "kernel_id": None,
    "key_name": "key_name", "launch_index": "launch_index", "launched_at": "launched_at",
    "locked_by": "locked", "locked": "locked", "node": "node", "power_state": "power_state",
    "progress": "progress", "project_id": "project_id", "ramdisk_id": None,
    "root_device_name": None, "task_state": "task_state", "terminated_at": "terminated_at",
    "updated_at": "updated_at", "user_id": "user_id", "uuid": "uuid", "vm_state": "vm_state",
    "memory_mb": "memory_mb", "vcpus": "vcpus", "root_gb": "root_gb",
    "ephemeral_gb": "ephemeral_gb", "deleted": "deleted", "deleted_at": "deleted_at",
    "reservation_id": "reservation_id",
}

# Regular-expression filters: the API's name → the column searched.
REGEX_COLUMNS = {
    "name": "display_name",
    "hostname": "hostname",
    "node": "node",
    "description": "description",
    "key_name": "key_name",
    "availability_zone": "availability_zone",
    "reservation_id": "reservation_id",
    "access_ip_v4": "access_ip_v4",
    "access_ip_v6": "access_ip_v6",
    "created_at": "created_at",
    "launched_at": "launched_at",
    "terminated_at": "terminated_at",
    "progress": "progress",
}


@dataclass
class ServerFilters:
    """What a server list asks for, already checked against what the caller may ask."""

    # The tenancy scope: every project's servers (admin with all_tenants), or one project's.
    all_tenants: bool = False
    project_id: str | None = None
    user_id: str | None = None
    uuid: str | None = None
    image: str | None = None
    flavor: str | None = None
    host: str | None = None
    vm_states: list[str] | None = None
    task_states: list[str] | None = None
    statuses: list[str] | None = None
    locked: bool | None = None
    launch_index: int | None = None
    power_state: str | None = None  # a regex over Nova's integer codes
    config_drive: str | None = None  # a regex over "True" / ""
    regex: dict[str, str] = field(default_factory=dict)  # REGEX_COLUMNS name → pattern
    tags: list[str] = field(default_factory=list)
    tags_any: list[str] = field(default_factory=list)
    not_tags: list[str] = field(default_factory=list)
    not_tags_any: list[str] = field(default_factory=list)
    ip: str | None = None
    ip6: str | None = None
    changes_since: datetime | None = None
    changes_before: datetime | None = None
    deleted: bool | None = None  # None: live ones, unless a changes-* filter asks for both
    sort_keys: list[str] = field(default_factory=lambda: ["created_at"])
    sort_dirs: list[str] = field(default_factory=lambda: ["desc"])
    limit: int | None = None
    marker: str | None = None


def _valid_regex(name: str, pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error:
        raise errors.BadRequest(f"Invalid regular expression for {name}: {pattern}") from None


def _matching(values: dict[str, str], pattern: str, name: str) -> list[str]:
    """The keys whose text the regular expression finds something in."""
    compiled = _valid_regex(name, pattern)
    return [key for key, text in values.items() if compiled.search(text)]


def _texts(value: object) -> list[str]:
    """How a column reads as text to a regular expression: a time both as a database prints it
    and in ISO 8601, a boolean as Nova's config_drive ("True" or ""), None as nothing."""
    if value is None:
        return [""]
    if isinstance(value, datetime):
        utc = value.astimezone(UTC)
        return [utc.strftime("%Y-%m-%d %H:%M:%S"), utc.strftime("%Y-%m-%dT%H:%M:%SZ")]
    if isinstance(value, bool):
        return ["True" if value else ""]
    return [str(value)]


def _regex_matches(qs: QuerySet[Instance], column: str, pattern: str, name: str) -> Q:
    compiled = _valid_regex(name, pattern)
    found = [uuid for uuid, value in qs.values_list("uuid", column)
             if any(compiled.search(text) for text in _texts(value))]
    return Q(uuid__in=found)


def _zone_matches(qs: QuerySet[Instance], pattern: str) -> Q:
    """Servers whose zone matches: a placed server is in its host's zone, an unplaced one in the
    zone it asked for (as Nova records the zone when it schedules)."""
    compiled = _valid_regex("availability_zone", pattern)
    rows = list(qs.values_list("uuid", "host", "availability_zone"))
    zones = availability_zones.host_zones({host for _, host, _ in rows if host})
    found = [uuid for uuid, host, asked in rows
             if compiled.search(availability_zones.zone_of(host, zones) if host else asked or "")]
    return Q(uuid__in=found)


def _servers_with_address(qs: QuerySet[Instance], pattern: str, version: int) -> Q:
    """Servers one of whose fixed addresses of the IP version matches `pattern`."""
    compiled = _valid_regex("ip6" if version == 6 else "ip", pattern)
    uuids = [str(u) for u in qs.values_list("uuid", flat=True)]
    found: set[str] = set()
    for device_id, fixed_ips in Port.objects.filter(device_id__in=uuids).values_list(
        "device_id", "fixed_ips"
    ):
        for fixed in fixed_ips or []:
            address = fixed.get("ip_address", "")
            if (":" in address) == (version == 6) and compiled.search(address):
                found.add(device_id)
    return Q(uuid__in=found)


def _tag_filters(qs: QuerySet[Instance], f: ServerFilters) -> QuerySet[Instance]:
    for tag in f.tags:  # every one of them
        qs = qs.filter(uuid__in=InstanceTag.objects.filter(tag=tag).values("instance_id"))
    if f.tags_any:
        qs = qs.filter(uuid__in=InstanceTag.objects.filter(tag__in=f.tags_any)
                       .values("instance_id"))
    if f.not_tags:  # not all of them at once
        having_all = Instance.objects.all()
        for tag in f.not_tags:
            having_all = having_all.filter(
                uuid__in=InstanceTag.objects.filter(tag=tag).values("instance_id"))
        qs = qs.exclude(uuid__in=having_all.values("uuid"))
    if f.not_tags_any:  # none of them
        qs = qs.exclude(uuid__in=InstanceTag.objects.filter(tag__in=f.not_tags_any)
                        .values("instance_id"))
    return qs


def _state_filters(qs: QuerySet[Instance], f: ServerFilters) -> QuerySet[Instance] | None:
    if f.statuses is not None:
        vm_states, task_states = states_for_statuses(f.statuses)
        if not vm_states:
            return None
        qs = qs.filter(vm_state__in=vm_states)
        if DEFAULT not in task_states:
            qs = qs.filter(task_state__in=task_states)
    if f.vm_states is not None:
        qs = qs.filter(vm_state__in=f.vm_states)
    if f.task_states is not None:
        qs = qs.filter(task_state__in=f.task_states)
    if f.power_state is not None:
        codes = {name: str(code) for name, code in states.POWER_STATE_CODES.items()}
        qs = qs.filter(power_state__in=_matching(codes, f.power_state, "power_state"))
    return qs


def _deleted_filter(qs: QuerySet[Instance], f: ServerFilters) -> QuerySet[Instance]:
    if f.deleted is None and f.changes_since is None and f.changes_before is None:
        return qs.filter(deleted=False)
    if f.deleted is not None:
        qs = qs.filter(deleted=f.deleted)
    if f.changes_since is not None:
        qs = qs.filter(updated_at__gte=f.changes_since)
    if f.changes_before is not None:
        qs = qs.filter(updated_at__lte=f.changes_before)
    return qs


def filtered(ctx: RequestContext, f: ServerFilters) -> QuerySet[Instance] | None:
    """The matching servers, unordered; None when no server can match (an empty list)."""
    qs = Instance.objects.all()
    if not (ctx.is_admin and f.all_tenants):
        qs = qs.filter(project_id=ctx.project_id)
    elif f.project_id:
        qs = qs.filter(project_id=f.project_id)
    qs = _deleted_filter(qs, f)
    exact = {"user_id": f.user_id, "host": f.host, "locked": f.locked,
             "launch_index": f.launch_index}
    qs = qs.filter(**{k: v for k, v in exact.items() if v is not None})
    if f.uuid is not None:
        qs = qs.filter(uuid=canonical_uuid(f.uuid)) if canonical_uuid(f.uuid) else qs.none()
    if f.image is not None:
        qs = qs.filter(image_ref=ref_id(f.image))
    if f.flavor is not None:
        qs = qs.filter(flavor_snapshot__id=ref_id(f.flavor))
    state_qs = _state_filters(qs, f)
    if state_qs is None:
        return None
    qs = state_qs
    qs = _tag_filters(qs, f)
    for name, pattern in f.regex.items():
        if name == "availability_zone":
            qs = qs.filter(_zone_matches(qs, pattern))
        else:
            qs = qs.filter(_regex_matches(qs, REGEX_COLUMNS[name], pattern, name))
    if f.config_drive is not None:
        qs = qs.filter(_regex_matches(qs, "config_drive", f.config_drive, "config_drive"))
    if f.ip is not None:
        qs = qs.filter(_servers_with_address(qs, f.ip, 4))
    if f.ip6 is not None:
        qs = qs.filter(_servers_with_address(qs, f.ip6, 6))
    return qs


def ordering(f: ServerFilters) -> list[str]:
    """The ORDER BY of a list: each sort key with its direction (the last direction given
    applies to keys without one), then the uuid so that pages never overlap."""
    order: list[str] = []
    for index, key in enumerate(f.sort_keys):
        column = SORT_KEYS.get(key)
        if column is None:
            continue
        direction = f.sort_dirs[min(index, len(f.sort_dirs) - 1)] if f.sort_dirs else "desc"
        order.append(("-" if direction == "desc" else "") + column)
    last = f.sort_dirs[-1] if f.sort_dirs else "desc"
    order.append(("-" if last == "desc" else "") + "uuid")
    return order
