"""The query string of GET /servers and /servers/detail, read as Nova reads it.

Who may use which filter: admins every filter Nova knows; others a list that grew with the
microversion (2.5 ip6, 2.26 the tag filters, 2.66 changes-before, 2.73 locked, 2.83 the state,
time, zone, key and user filters, 2.90 hostname). A filter a non-admin may not use is dropped
silently, as Nova drops it. A parameter Nova does not know is ignored below 2.75 and refused (400)
from there; the joined-table names (metadata, security_groups…) and names starting with "_" are
refused from an admin at every version.
"""

from __future__ import annotations

from django.http import QueryDict

from cloud import errors
from cloud.compute import server_filters, states
from cloud.compute.server_filters import REGEX_COLUMNS, ServerFilters
from cloud.identity.context import RequestContext

from ..microversion import APIVersion
from . import params

_TAG_FILTERS = ("tags", "tags-any", "not-tags", "not-tags-any")
_JOINED = ("block_device_mapping", "services", "metadata", "system_metadata", "info_cache",
           "security_groups", "pci_devices")
_PAGING = ("limit", "marker", "sort_key", "sort_dir")
# Every filter Nova knows on a server list (2.1), and what later versions added.
_KNOWN_21 = (
    "user_id", "project_id", "tenant_id", "launch_index", "image_ref", "image", "kernel_id",
    "ramdisk_id", "hostname", "key_name", "power_state", "vm_state", "task_state", "host", "node",
    "flavor", "reservation_id", "launched_at", "terminated_at", "availability_zone", "name",
    "display_name", "description", "display_description", "locked_by", "uuid",
    "root_device_name", "config_drive", "access_ip_v4", "access_ip_v6", "auto_disk_config",
    "progress", "all_tenants", "soft_deleted", "deleted", "status", "changes-since", "ip", "ip6",
    "created_at", *_JOINED, *_PAGING,
)
QUERY_PARAMS = (*_KNOWN_21, *_TAG_FILTERS, "changes-before", "locked")
# Sort keys Nova takes but that order nothing (dropped), before and from 2.73.
_IGNORED_SORT_KEYS = frozenset({
    "architecture", "cell_name", "cleaned", "default_ephemeral_device", "default_swap_device",
    "deleted", "deleted_at", "disable_terminate", "ephemeral_gb", "ephemeral_key_uuid", "id",
    "key_data", "launched_on", "locked", "memory_mb", "os_type", "reservation_id", "root_gb",
    "shutdown_terminate", "user_data", "vcpus", "vm_mode",
})
_VALID_SORT_KEYS = frozenset({
    "access_ip_v4", "access_ip_v6", "auto_disk_config", "availability_zone", "config_drive",
    "created_at", "display_description", "display_name", "host", "hostname", "image_ref",
    "instance_type_id", "kernel_id", "key_name", "launch_index", "launched_at", "locked_by", "node",
    "power_state", "progress", "project_id", "ramdisk_id", "root_device_name", "task_state",
    "terminated_at", "updated_at", "user_id", "uuid", "vm_state",
})


def known_at(version: APIVersion) -> set[str]:
    known = set(_KNOWN_21)
    if version.at_least("2.26"):
        known.update(_TAG_FILTERS)
    if version.at_least("2.66"):
        known.add("changes-before")
    if version.at_least("2.73"):
        known.add("locked")
    return known


def allowed_to_members(version: APIVersion) -> set[str]:
    allowed = {"reservation_id", "name", "status", "image", "flavor", "ip", "changes-since",
               "all_tenants", *_PAGING}
    if version.at_least("2.5"):
        allowed.add("ip6")
    if version.at_least("2.26"):
        allowed.update(_TAG_FILTERS)
    if version.at_least("2.66"):
        allowed.add("changes-before")
    if version.at_least("2.73"):
        allowed.add("locked")
    if version.at_least("2.83"):
        allowed.update(("availability_zone", "config_drive", "key_name", "created_at",
                        "launched_at", "terminated_at", "power_state", "task_state", "vm_state",
                        "progress", "user_id"))
    if version.at_least("2.90"):
        allowed.add("hostname")
    return allowed


def _strict_bool(query: QueryDict, name: str) -> bool:
    raw = query[name].strip().lower()
    if raw in ("1", "t", "true", "on", "y", "yes"):
        return True
    if raw in ("0", "f", "false", "off", "n", "no"):
        return False
    raise errors.BadRequest(f"Unrecognized value '{query[name]}', acceptable values are: '0', "
                            "'1', 'f', 'false', 'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'")


def _sorting(query: QueryDict, version: APIVersion, is_admin: bool) -> tuple[list[str], list[str]]:
    keys = [k.strip() for k in query.getlist("sort_key")]
    dirs = [d.strip() for d in query.getlist("sort_dir")]
    valid = set(_VALID_SORT_KEYS)
    ignored = set(_IGNORED_SORT_KEYS)
    if version.at_least("2.73"):
        valid.add("locked")
        ignored.discard("locked")
    if version.at_least("2.75"):
        ignored = set()
    chosen_keys, chosen_dirs = [], []
    for index, key in enumerate(keys):
        if key in ignored:
            continue
        if key not in valid:
            raise errors.BadRequest(f"Invalid input for query parameters sort_key. Value: {key}.")
        if key in ("host", "node") and not is_admin:
            raise errors.Forbidden(f"Only administrators can sort servers by {key}")
        chosen_keys.append(key)
        if index < len(dirs):
            chosen_dirs.append(dirs[index])
    for direction in dirs:
        if direction not in ("asc", "desc"):
            raise errors.BadRequest(f"Unknown sort direction, must be 'desc' or 'asc': {direction}")
    if not chosen_keys:
        chosen_keys = ["created_at"]
    if not chosen_dirs:
        chosen_dirs = [dirs[-1]] if dirs else ["desc"]
    return chosen_keys, chosen_dirs


def _tags(query: QueryDict, name: str) -> list[str]:
    return [t for t in query[name].split(",") if t] if name in query else []


def read_filters(query: QueryDict, ctx: RequestContext, version: APIVersion) -> ServerFilters:
    """The filters a list request asks for and may use; raises 400/403 as Nova does."""
    known = known_at(version)
    unknown = sorted(set(query) - known)
    if unknown and version.at_least("2.75"):
        raise errors.BadRequest(
            f"Invalid input for query parameters {unknown[0]}. Additional properties are not "
            f"allowed ('{unknown[0]}' was unexpected)")
    names = set(query) & known
    if ctx.is_admin:
        for name in names:
            if name in _JOINED or name.startswith("_"):
                raise errors.BadRequest(f"Invalid filter field: {name}.")
    else:
        names &= allowed_to_members(version)
    f = ServerFilters()
    f.all_tenants = "all_tenants" in names and params.bool_param(query, "all_tenants")
    if f.all_tenants and not ctx.is_admin:
        raise errors.Forbidden("Policy doesn't allow compute:servers:all_tenants to be "
                               "performed.")
    if f.all_tenants:
        f.project_id = query.get("project_id") or query.get("tenant_id") or None
    f.limit = params.limit_param(query)
    f.marker = query.get("marker")
    f.sort_keys, f.sort_dirs = _sorting(query, version, ctx.is_admin)
    _read_states(query, names, f, ctx, version)
    _read_times(query, names, f)
    for name in ("user_id", "host", "uuid"):
        if name in names:
            setattr(f, name, query[name])
    if "image" in names or "image_ref" in names:
        f.image = query.get("image") or query.get("image_ref")
    if "flavor" in names:
        f.flavor = query["flavor"]
    if "launch_index" in names:
        if not query["launch_index"].isdigit():
            return _nothing(f)
        f.launch_index = int(query["launch_index"])
    for name in REGEX_COLUMNS:
        if name in names:
            f.regex[name] = query[name]
    for alias, name in (("display_name", "name"), ("display_description", "description")):
        if alias in names and name not in f.regex:
            f.regex[name] = query[alias]
    if "config_drive" in names:
        f.config_drive = query["config_drive"]
    if "power_state" in names:
        f.power_state = query["power_state"]
    if "locked" in names:
        f.locked = _strict_bool(query, "locked")
    f.tags = _tags(query, "tags") if "tags" in names else []
    f.tags_any = _tags(query, "tags-any") if "tags-any" in names else []
    f.not_tags = _tags(query, "not-tags") if "not-tags" in names else []
    f.not_tags_any = _tags(query, "not-tags-any") if "not-tags-any" in names else []
    f.ip = query["ip"] if "ip" in names else None
    f.ip6 = query["ip6"] if "ip6" in names else None
    return f


def _nothing(f: ServerFilters) -> ServerFilters:
    f.statuses = []  # a status list that names nothing matches no server
    return f


def _read_states(query: QueryDict, names: set[str], f: ServerFilters, ctx: RequestContext,
                 version: APIVersion) -> None:
    if "status" in names:
        statuses = query.getlist("status")
        vm_states, _ = server_filters.states_for_statuses(statuses)
        if not vm_states and version.at_least("2.38"):
            raise errors.BadRequest("Invalid status value")
        f.statuses = statuses
    if "vm_state" in names:
        f.vm_states = query.getlist("vm_state")
        if f.vm_states == [states.DELETED]:
            if not ctx.is_admin:
                raise errors.Forbidden("Only administrators may list deleted instances")
            f.deleted = True
    if "task_state" in names:
        f.task_states = query.getlist("task_state")
    if "deleted" in names:
        # An unreadable value lists the live servers, as Nova reads it.
        f.deleted = query["deleted"].strip().lower() in ("1", "t", "true", "on", "y", "yes")


def _read_times(query: QueryDict, names: set[str], f: ServerFilters) -> None:
    if "changes-since" in names:
        f.changes_since = params.datetime_param(query, "changes-since")
    # Before 2.66 changes-before filters nothing, but a malformed one is refused at any version
    # (as the instance actions' filters): a script's typo never silently lists every server.
    changes_before = params.datetime_param(query, "changes-before")
    if "changes-before" in names:
        f.changes_before = changes_before
    if f.changes_since and f.changes_before and f.changes_before < f.changes_since:
        raise errors.BadRequest("The value of changes-since must be less than or equal to "
                                "changes-before.")
