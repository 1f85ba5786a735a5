"""A server as its API body reads it: the columns the body shows, as plain values.

A list of 1,000 servers read as model objects spends most of its time in Django building them
(every column, each JSON column decoded, each timestamp through Django's time zone loader). The
list reads only the columns a body shows, as tuples, with the timestamps and the uuid already text
in the database's answer; show, update and rebuild, which have an Instance at hand, make the same
row from it (ServerRow.of), so one body builder serves every view and their shapes cannot drift.

Timestamps are UTC text, "YYYY-MM-DDTHH:MM:SS" with ".ffffff" when there is a fraction; a body
cuts them to the precision it shows (cloud/api/compute/bodies.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db.models import BooleanField, CharField, F, Func, QuerySet, TextField
from django.db.models.functions import Cast

from cloud import errors
from cloud.identity.context import RequestContext
from cloud.ids import canonical_uuid

from . import server_filters, states
from .models import MAX_LIST_LIMIT, Instance


@dataclass(slots=True)
class ServerRow:
    """The columns of an Instance that some microversion's server body shows (field names as the
    model's, so a body reads either the same way)."""

    uuid: str
    display_name: str
    hostname: str
    description: str | None
    project_id: str
    user_id: str
    image_ref: str
    vcpus: int
    memory_mb: int
    root_gb: int
    ephemeral_gb: int
    vm_state: str
    task_state: str | None
    power_state: str
    host: str | None
    node: str | None
    availability_zone: str | None
    key_name: str | None
    access_ip_v4: str
    access_ip_v6: str
    config_drive: bool
    locked: bool
    locked_reason: str | None
    launch_index: int
    reservation_id: str
    deleted: bool
    progress: int
    flavor_snapshot: dict
    metadata: dict
    scheduler_hints: dict
    security_groups: list
    created_at: str
    updated_at: str
    launched_at: str | None
    terminated_at: str | None
    # Read only when the body will show it (admins, 2.3 and later): it can be 64 KiB a server.
    user_data: str | None

    @property
    def status(self) -> str:
        return states.status(self.vm_state, self.task_state)

    @classmethod
    def of(cls, instance: Instance) -> ServerRow:
        """The row of a server already loaded as a model object (show, update, rebuild)."""
        values: list[Any] = [str(instance.uuid)]
        values += [getattr(instance, name) for name in _PLAIN + _JSON]
        values += [_utc_text(getattr(instance, name)) for name in _TIMES]
        values.append(instance.user_data)
        return cls(*values)


# In ServerRow's order: the uuid first, the plain columns, the JSON ones, the timestamps, the user
# data.
_PLAIN = ("display_name", "hostname", "description", "project_id", "user_id", "image_ref",
          "vcpus", "memory_mb", "root_gb", "ephemeral_gb", "vm_state", "task_state",
          "power_state", "host", "node", "availability_zone", "key_name", "access_ip_v4",
          "access_ip_v6", "config_drive", "locked", "locked_reason", "launch_index",
          "reservation_id", "deleted", "progress")
_JSON = ("flavor_snapshot", "metadata", "scheduler_hints", "security_groups")
_TIMES = ("created_at", "updated_at", "launched_at", "terminated_at")


def _utc_text(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat(
        timespec="microseconds")[:26]


class _UtcText(Func):
    """A timestamp column as UTC text, formatted by the database: cheaper than loading each
    through Django's time zone loader and formatting it again in Python. SQLite keeps timestamps
    as UTC text already ("YYYY-MM-DD HH:MM:SS[.ffffff]"), read as text through an expression (a
    bare column of a datetime type would be parsed)."""

    output_field = CharField()

    def as_postgresql(self, compiler, connection, **extra):  # type: ignore[no-untyped-def]
        return self.as_sql(compiler, connection, template=(
            "to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US')"),
            **extra)

    def as_sqlite(self, compiler, connection, **extra):  # type: ignore[no-untyped-def]
        return self.as_sql(compiler, connection, template="REPLACE(%(expressions)s, ' ', 'T')",
                           **extra)


class _UuidText(Func):
    """A uuid column as its canonical text, so that a row needs no UUID object made and printed
    (SQLite keeps it as 32 hex digits: the dashes are put in)."""

    output_field = CharField()

    def as_postgresql(self, compiler, connection, **extra):  # type: ignore[no-untyped-def]
        return self.as_sql(compiler, connection, template="(%(expressions)s)::text", **extra)

    def as_sqlite(self, compiler, connection, **extra):  # type: ignore[no-untyped-def]
        parts = "||'-'||".join(f"substr(%(expressions)s, {start}, {length})" for start, length in
                               ((1, 8), (9, 4), (13, 4), (17, 4), (21, 12)))
        return self.as_sql(compiler, connection, template=f"lower({parts})", **extra)


class Among(Func):
    """`column IN values` for a page's worth of values (1,000 uuids). On PostgreSQL the list goes
    as one parameter, the text of an array (`column = ANY(%s::uuid[])`): a thousand placeholders
    cost a few milliseconds of CPU (each value prepared by Django, the query split by psycopg),
    and so does psycopg's quoting of a list, element by element, in Python. Usable in filter():
    `Port.objects.filter(Among("device_id", uuids))`."""

    output_field = BooleanField()
    conditional = True

    def __init__(self, column: str, values: list[str]):
        super().__init__(F(column))
        self.values = values

    def as_sql(self, compiler, connection, **extra):  # type: ignore[no-untyped-def]
        column, params = compiler.compile(self.source_expressions[0])
        if not self.values:
            return "1 = 0", []
        field = self.source_expressions[0].output_field
        values = [field.get_db_prep_value(v, connection) for v in self.values]
        return f"{column} IN ({', '.join(['%s'] * len(values))})", [*params, *values]

    def as_postgresql(self, compiler, connection, **extra):  # type: ignore[no-untyped-def]
        column, params = compiler.compile(self.source_expressions[0])
        if not self.values:
            return "1 = 0", []
        kind = self.source_expressions[0].output_field.db_type(connection)
        return f"{column} = ANY(%s::{kind}[])", [*params, _array_text(self.values)]


def _array_text(values: list[str]) -> str:
    """PostgreSQL's text form of an array of strings: each element quoted, quotes and
    backslashes escaped (uuids, the usual case, have neither: joined as they are)."""
    if not values:
        return "{}"
    texts = [str(v) for v in values]
    joined = "".join(texts)
    if '"' in joined or "\\" in joined:
        texts = [t.replace("\\", "\\\\").replace('"', '\\"') for t in texts]
    return '{"' + '","'.join(texts) + '"}'


def _page(ctx: RequestContext, f: server_filters.ServerFilters) -> QuerySet[Instance] | None:
    """The page of servers `f` asks for, in its order; `marker` is the uuid of the last server of
    the previous page (400 when it is not among the matches). None when nothing can match."""
    qs = server_filters.filtered(ctx, f)
    if qs is None:
        return None
    order = server_filters.ordering(f)
    qs = qs.order_by(*order)
    limit = MAX_LIST_LIMIT if f.limit is None else min(f.limit, MAX_LIST_LIMIT)
    if not f.marker:
        return qs[:limit]
    ordered = [str(u) for u in qs.values_list("uuid", flat=True)]
    marker = canonical_uuid(f.marker)
    if marker not in ordered:
        raise errors.BadRequest(f"marker [{f.marker}] not found")
    page = ordered[ordered.index(marker) + 1:][:limit]
    # The same order by the same keys, the uuid last: the page comes back in the order above.
    return Instance.objects.filter(uuid__in=page).order_by(*order)


def list_server_rows(ctx: RequestContext, f: server_filters.ServerFilters,
                     with_user_data: bool = False) -> list[ServerRow]:
    """One page of the servers matching `f`, in the order asked, as rows (user_data None unless
    asked for)."""
    qs = _page(ctx, f)
    if qs is None:
        return []
    columns = ["uuid_text", *_PLAIN, *(f"{name}_json" for name in _JSON),
               *(f"{name}_text" for name in _TIMES)]
    if with_user_data:
        columns.append("user_data")
    rows = qs.annotate(uuid_text=_UuidText(F("uuid")),
                       **{f"{name}_json": Cast(name, TextField()) for name in _JSON},
                       **{f"{name}_text": _UtcText(F(name)) for name in _TIMES},
                       ).values_list(*columns)
    # The JSON columns as text, each distinct text decoded once: a page's servers mostly share
    # their flavor, their (empty) metadata and hints and their security groups. The decoded
    # values are shared between rows, so a body must not change them in place.
    decoded: dict[str, Any] = {}

    def decode(text: str) -> Any:
        value = decoded.get(text, _MISSING)
        if value is _MISSING:
            value = decoded[text] = json.loads(text)
        return value

    plain = 1 + len(_PLAIN)
    tail: list[Any] = [] if with_user_data else [None]
    return [ServerRow(*[*row[:plain], decode(row[plain]), decode(row[plain + 1]),
                        decode(row[plain + 2]), decode(row[plain + 3]), *row[plain + 4:], *tail])
            for row in rows]


_MISSING = object()


def list_server_names(ctx: RequestContext,
                      f: server_filters.ServerFilters) -> list[tuple[str, str]]:
    """The (uuid, name) of each server of the page `f` asks for (GET /servers)."""
    qs = _page(ctx, f)
    if qs is None:
        return []
    return [(str(u), name) for u, name in qs.values_list("uuid", "display_name")]
