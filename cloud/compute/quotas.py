"""Project quotas: a limit per project and resource, and usage counted from the rows that exist.

There is no usage table that could drift from the truth. `reserve` locks the project row inside the
caller's transaction and counts the project's live rows; a second concurrent request for the same
project waits on that lock until the first has committed its rows (or rolled back), and then
counts them. On SQLite, where FOR UPDATE does not exist, the database's single writer gives the
same ordering.

Limits come from settings.KUMO_DEFAULT_QUOTAS unless the project has its own Quota row; -1 means
unlimited. Two limits are not project totals: `metadata_items` caps the keys of one server and
`server_group_members` the members of one group. An admin may also limit one user within a project
(Nova's per-user quotas, UserQuota rows): never above the project's limit, and a boot is checked
against both, the user's servers counted for the user's limits.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.db import connection, transaction

from cloud import errors
from cloud.identity.models import Project, Quota, User, UserQuota

from .models import Instance, KeyPair, QuotaClass, ServerGroup

UNLIMITED = -1
MAX_LIMIT = 2**31 - 1

# What Kumo enforces, with the defaults Nova ships (settings may override each one).
ENFORCED: dict[str, int] = {
    "instances": 10,
    "cores": 20,
    "ram": 51200,
    "metadata_items": 128,
    "key_pairs": 100,
    "server_groups": 10,
    "server_group_members": 10,
}
# Nova reports these too. Kumo stores what an admin sets but does not enforce them: security groups
# and floating IPs belong to the network API, and personality files are not supported.
REPORTED_ONLY: dict[str, int] = {
    "fixed_ips": -1,
    "floating_ips": 10,
    "security_groups": 10,
    "security_group_rules": 20,
    "injected_files": 5,
    "injected_file_content_bytes": 10240,
    "injected_file_path_bytes": 255,
}
RESOURCES: tuple[str, ...] = (*ENFORCED, *REPORTED_ONLY)

# Resources whose usage is a project total; only these are counted by `usage` and refuse a limit
# below usage in `update_limits`.
_PROJECT_TOTALS = ("instances", "cores", "ram", "server_groups")


DEFAULT_CLASS = "default"


def default_limits() -> dict[str, int]:
    """Every project's limits unless it has its own: Nova's defaults, over them the settings, over
    those the "default" quota class an admin set (os-quota-class-sets)."""
    return class_limits(DEFAULT_CLASS)


def class_limits(name: str) -> dict[str, int]:
    """A quota class's limits: the default class's for anything the class does not set."""
    configured = getattr(settings, "KUMO_DEFAULT_QUOTAS", {}) or {}
    merged = {**ENFORCED, **REPORTED_ONLY}
    merged.update({k: int(v) for k, v in configured.items() if k in merged})
    names = [DEFAULT_CLASS] if name == DEFAULT_CLASS else [DEFAULT_CLASS, name]
    for class_name in names:
        merged.update({resource: limit for resource, limit in QuotaClass.objects.filter(
            name=class_name, resource__in=merged).values_list("resource", "hard_limit")})
    return merged


def update_class_limits(name: str, values: dict[str, int]) -> dict[str, int]:
    """Set a quota class's limits (an admin's PUT); the class's limits after."""
    unknown = set(values) - set(RESOURCES)
    if unknown:
        raise errors.BadRequest(f"Unknown quota resources: {', '.join(sorted(unknown))}")
    for resource, value in values.items():
        if not UNLIMITED <= value <= MAX_LIMIT:
            raise errors.BadRequest(
                f"Quota limit {value} for {resource} must be between -1 and {MAX_LIMIT}.")
    with transaction.atomic():
        for resource, value in values.items():
            QuotaClass.objects.update_or_create(
                name=name, resource=resource, defaults={"hard_limit": value})
    return class_limits(name)


def limits_for(project_id: str | None, user_id: str | None = None) -> dict[str, int]:
    """Every resource's limit for the project: its own Quota rows over the defaults; with
    `user_id`, that user's limits in it (its UserQuota rows over the project's)."""
    limits = default_limits()
    if project_id:
        for resource, hard_limit in Quota.objects.filter(project_id=project_id).values_list(
            "resource", "hard_limit"
        ):
            if resource in limits:
                limits[resource] = hard_limit
    if project_id and user_id:
        limits.update(_user_rows(project_id, user_id))
    return limits


def _user_rows(project_id: str, user_id: str) -> dict[str, int]:
    rows = UserQuota.objects.filter(project_id=project_id, user_id=user_id, resource__in=RESOURCES)
    return dict(rows.values_list("resource", "hard_limit"))


_NONE = "CAST(NULL AS BIGINT), CAST(NULL AS BIGINT)"  # typed, so a union with the sums holds
_LIMIT_ROWS = (
    f"SELECT 0, resource, hard_limit, {_NONE} FROM {QuotaClass._meta.db_table} WHERE name = %s"
    f" UNION ALL SELECT 1, resource, hard_limit, {_NONE} FROM {Quota._meta.db_table}"
    " WHERE project_id = %s"
    f" UNION ALL SELECT 2, resource, hard_limit, {_NONE} FROM {UserQuota._meta.db_table}"
    " WHERE project_id = %s AND user_id = %s")
# usage()'s count of the project's servers, as one more row of the same statement.
_SERVER_ROW = (" UNION ALL SELECT 3, '', COUNT(*), SUM(vcpus), SUM(memory_mb)"
               f" FROM {Instance._meta.db_table} WHERE project_id = %s AND NOT deleted")


def _limits_and_user_rows(
    project_id: str | None, user_id: str | None, *, count_servers: bool = False,
) -> tuple[dict[str, int], dict[str, int], dict[str, int] | None]:
    """limits_for(project_id) and _user_rows(project_id, user_id), in one statement: a boot reads
    all three kinds of limit rows (the default class's, the project's, the user's) and each
    query was a round trip and an ORM compile on the web's hottest path. With `count_servers`
    (and a project), the same statement counts the project's servers, cores and RAM as usage()
    does (else None): reserve() needs both, after its lock."""
    sql, params = _LIMIT_ROWS, [DEFAULT_CLASS, project_id, project_id, user_id]
    if count_servers and project_id:
        sql += _SERVER_ROW
        params.append(str(project_id))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    servers = None
    for which, _, count, cores, ram in rows:
        if which == 3:
            servers = {"instances": count or 0, "cores": cores or 0, "ram": ram or 0}
    configured = getattr(settings, "KUMO_DEFAULT_QUOTAS", {}) or {}
    limits = {**ENFORCED, **REPORTED_ONLY}
    limits.update({k: int(v) for k, v in configured.items() if k in limits})
    user: dict[str, int] = {}
    # The class's rows over the defaults, then the project's over those (as limits_for).
    for kind in (0, 1):
        limits.update({resource: hard_limit for which, resource, hard_limit, *_ in rows
                       if which == kind and resource in limits})
    if project_id and user_id:
        user = {resource: hard_limit for which, resource, hard_limit, *_ in rows
                if which == 2 and resource in RESOURCES}
    return limits, user, servers


_SERVER_TOTALS = frozenset({"instances", "cores", "ram"})


def usage(
    project_id: str | None, user_id: str | None = None, *, users_servers: bool = False,
    only: Iterable[str] | None = None,
) -> dict[str, int]:
    """What the project uses now, from its live rows. Key pairs belong to users, so they are
    counted for `user_id` when given; with `users_servers`, so are servers, cores and RAM (what a
    user's own limits count). Per-server and per-group resources report 0, as Nova does. With
    `only`, just those resources are counted (the others report 0): a boot asks nothing about key
    pairs or server groups."""
    return _usage(project_id, user_id, users_servers=users_servers, only=only)


def _usage(project_id: str | None, user_id: str | None, *, users_servers: bool = False,
           only: Iterable[str] | None = None,
           servers: dict[str, int] | None = None) -> dict[str, int]:
    """usage(), given the project's server totals when already counted (`servers`)."""
    wanted = set(RESOURCES if only is None else only)
    used = dict.fromkeys(RESOURCES, 0)
    if servers is not None and not users_servers:
        if wanted & _SERVER_TOTALS:
            used.update(servers)
    elif project_id and wanted & _SERVER_TOTALS:
        # Written out: every boot counts these, and the ORM's aggregate() spent more CPU copying
        # and compiling its expressions than the database spent counting.
        sql = (f"SELECT COUNT(*), SUM(vcpus), SUM(memory_mb) FROM {Instance._meta.db_table}"
               " WHERE project_id = %s AND NOT deleted")
        params = [str(project_id)]
        if users_servers and user_id:
            sql += " AND user_id = %s"
            params.append(str(user_id))
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            instances, cores, ram = cursor.fetchone()
        used.update({"instances": instances or 0, "cores": cores or 0, "ram": ram or 0})
    if project_id and "server_groups" in wanted:
        used["server_groups"] = ServerGroup.objects.filter(project_id=project_id).count()
    if user_id and "key_pairs" in wanted:
        used["key_pairs"] = KeyPair.objects.filter(user_id=user_id).count()
    return used


def limits_and_usage(
    project_id: str | None, user_id: str | None = None
) -> tuple[dict[str, int], dict[str, int]]:
    """The project's limits and what it uses, for the quota detail and /limits."""
    return limits_for(project_id), usage(project_id, user_id)


def reserve(
    project_id: str | None,
    deltas: dict[str, int],
    *,
    user_id: str | None = None,
    group: ServerGroup | None = None,
) -> None:
    """Inside the caller's transaction: lock the project, check usage + deltas against limits,
    raise errors.OverLimit if any would be exceeded.

    `deltas["metadata_items"]` is the number of keys one new server carries; `key_pairs` is counted
    for `user_id` (the key pairs' owner), under a lock on that user; `server_group_members` is
    checked against `group`'s live members, under a lock on the group. The caller writes its rows
    before committing, so the locks cover the check and the write together.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("quotas.reserve() must run inside the caller's transaction")
    wanted = {k: int(v) for k, v in deltas.items() if v}
    unknown = set(wanted) - set(ENFORCED)
    if unknown:
        raise ValueError(f"not enforced quota resources: {sorted(unknown)}")
    # Taken first and always in this order (project, user, group), so two requests cannot deadlock.
    # FOR NO KEY UPDATE, like every row lock Kumo takes: it serialises reservations just as well,
    # but does not block the KEY SHARE locks PostgreSQL's deferred foreign-key checks take at
    # COMMIT. A plain FOR UPDATE here deadlocked a scheduler that, holding the group's lock for a
    # claim, committed a token referencing this project (tests/unit/compute/test_group_boot_race.py).
    _lock_project(project_id)
    if wanted.get("key_pairs"):
        if not user_id:
            raise ValueError("a key_pairs reservation needs the owner's user_id")
        list(User.objects.select_for_update(no_key=True).filter(pk=user_id).values_list("pk"))
    if wanted.get("server_group_members"):
        if group is None:
            raise ValueError("a server_group_members reservation needs the group")
        list(type(group).objects.select_for_update(no_key=True).filter(pk=group.pk).values_list("pk"))

    # The limits and, when asked for, the project's server totals: one statement, after the
    # lock (in its own snapshot, so it counts what a boot that held the lock before committed).
    limits, user_limits, servers = _limits_and_user_rows(
        project_id, user_id, count_servers=bool(wanted.keys() & _SERVER_TOTALS))
    if "metadata_items" in wanted:
        check_metadata_items(project_id, wanted.pop("metadata_items"), limits=limits)
    if not wanted:
        return
    used = _usage(project_id, user_id, only=wanted, servers=servers)
    if "server_group_members" in wanted:
        if group is None:
            raise ValueError("server_group_members are counted against a group: pass group=")
        used["server_group_members"] = group.members.filter(instance__deleted=False).count()
    over = [
        resource
        for resource, delta in wanted.items()
        if limits[resource] != UNLIMITED and used[resource] + delta > limits[resource]
    ]
    if over:
        raise errors.OverLimit(_over_message(over, wanted, used, limits),
                              resources=tuple(over))
    if user_id and project_id:
        _check_user_limits(project_id, user_id, wanted, user_limits)


def _lock_project(project_id: str | None) -> None:
    """The project's row lock that serialises reservations (see reserve). Written out where the
    database has FOR NO KEY UPDATE: every boot takes it, and the ORM compiled it every time."""
    if connection.vendor != "postgresql":
        list(Project.objects.select_for_update(no_key=True).filter(pk=project_id)
             .values_list("pk"))
        return
    with connection.cursor() as cursor:
        cursor.execute(_LOCK_PROJECT, [Project._meta.pk.get_db_prep_value(project_id, connection)])


_LOCK_PROJECT = (f"SELECT {Project._meta.pk.column} FROM {Project._meta.db_table}"
                 f" WHERE {Project._meta.pk.column} = %s FOR NO KEY UPDATE")


def _check_user_limits(project_id: str, user_id: str, wanted: dict[str, int],
                       limits: dict[str, int]) -> None:
    """The user's own limits in the project (`limits`, its UserQuota rows), against what the
    user's servers use (the project's lock, taken by the caller, covers these counts too)."""
    if not limits.keys() & wanted.keys():
        return
    used = usage(project_id, user_id, users_servers=True, only=wanted)
    over = [
        resource
        for resource, delta in wanted.items()
        if limits.get(resource, UNLIMITED) != UNLIMITED
        and used[resource] + delta > limits[resource]
    ]
    if over:
        raise errors.OverLimit(_over_message(over, wanted, used, limits),
                              resources=tuple(over))


def check_metadata_items(
    project_id: str | None, count: int, *, limits: dict[str, int] | None = None
) -> None:
    """403 when one server would carry more metadata items than the project allows."""
    limit = (limits or limits_for(project_id))["metadata_items"]
    if limit != UNLIMITED and count > limit:
        raise errors.OverLimit(
            f"Quota exceeded for metadata_items: Maximum number of metadata items exceeds {limit}",
            resources=("metadata_items",),
        )


def _over_message(
    over: list[str], wanted: dict[str, int], used: dict[str, int], limits: dict[str, int]
) -> str:
    def joined(values: Iterable[object]) -> str:
        return ", ".join(str(v) for v in values)

    return (
        f"Quota exceeded for {joined(over)}: Requested {joined(wanted[r] for r in over)}, "
        f"but already used {joined(used[r] for r in over)} of {joined(limits[r] for r in over)} "
        f"{joined(over)}"
    )


def update_limits(
    project_id: str, values: dict[str, int], *, force: bool = False
) -> dict[str, int]:
    """Set the project's own limits (an admin's PUT) and return all of them.

    Without `force`, a limit below what the project already uses is refused, as Nova does; -1 and
    any limit at or above usage are always accepted.
    """
    unknown = set(values) - set(RESOURCES)
    if unknown:
        raise errors.BadRequest(f"Unknown quota resources: {', '.join(sorted(unknown))}")
    for resource, value in values.items():
        if not UNLIMITED <= value <= MAX_LIMIT:
            raise errors.BadRequest(
                f"Quota limit {value} for {resource} must be between -1 and {MAX_LIMIT}."
            )
    with transaction.atomic():
        locked = list(Project.objects.select_for_update(no_key=True).filter(pk=project_id).values_list("pk"))
        if not locked:
            raise errors.BadRequest(f"Project ID {project_id} is not a valid project.")
        if not force:
            used = usage(project_id)
            for resource in _PROJECT_TOTALS:
                limit = values.get(resource)
                if limit is not None and limit != UNLIMITED and limit < used[resource]:
                    raise errors.BadRequest(
                        f"Quota limit {limit} for {resource} must be greater than or equal to "
                        f"already used and reserved {used[resource]}."
                    )
        for resource, value in values.items():
            Quota.objects.update_or_create(
                project_id=project_id, resource=resource, defaults={"hard_limit": value}
            )
    return limits_for(project_id)


def reset_limits(project_id: str) -> None:
    """Back to the defaults: the project's own limits are dropped (its network limits, rows of
    the same table named "network:…", are the network API's)."""
    Quota.objects.filter(project_id=project_id).exclude(resource__startswith="network:").delete()


def update_user_limits(
    project_id: str, user_id: str, values: dict[str, int], *, force: bool = False
) -> dict[str, int]:
    """Set a user's limits within the project (an admin's PUT ?user_id=) and return all of them.

    As Nova: a user's limit may not exceed the project's (nor be unlimited under a limited
    project) and, without `force`, may not fall below what the user's servers already use."""
    unknown = set(values) - set(RESOURCES)
    if unknown:
        raise errors.BadRequest(f"Unknown quota resources: {', '.join(sorted(unknown))}")
    with transaction.atomic():
        locked = list(Project.objects.select_for_update(no_key=True).filter(pk=project_id).values_list("pk"))
        if not locked:
            raise errors.BadRequest(f"Project ID {project_id} is not a valid project.")
        project_limits = limits_for(project_id)
        used = usage(project_id, user_id, users_servers=True)
        for resource, value in values.items():
            maximum = project_limits[resource]
            if not UNLIMITED <= value <= MAX_LIMIT:
                raise errors.BadRequest(
                    f"Quota limit {value} for {resource} must be between -1 and {MAX_LIMIT}.")
            if maximum != UNLIMITED and (value == UNLIMITED or value > maximum):
                raise errors.BadRequest(
                    f"Quota limit {value} for {resource} must be less than or equal to {maximum}.")
            if (not force and resource in (*_PROJECT_TOTALS, "key_pairs")
                    and value != UNLIMITED and value < used[resource]):
                raise errors.BadRequest(
                    f"Quota limit {value} for {resource} must be greater than or equal to "
                    f"already used and reserved {used[resource]}.")
        for resource, value in values.items():
            UserQuota.objects.update_or_create(
                project_id=project_id, user_id=user_id, resource=resource,
                defaults={"hard_limit": value})
    return limits_for(project_id, user_id)


def reset_user_limits(project_id: str, user_id: str) -> None:
    """Back to the project's limits: the user's own are dropped."""
    UserQuota.objects.filter(project_id=project_id, user_id=user_id).delete()
