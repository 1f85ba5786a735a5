"""Model instances from a raw SELECT, as Django's RawQuerySet makes them, for less per query.

A RawQuerySet works out on every query which column goes to which field, from the cursor's
description, and psycopg builds a Column object per column each time the description is read. For
the scheduler's reads of an instance (`SELECT i.*` and the joined columns, about 60) that was a
third of a scheduler's CPU: half a millisecond a read, paid even when no row comes back, which is
what most schedule tasks find (batch.py placed their boot with another's). Here that plan is made
once per statement and number of columns on each thread's connection, from the result's field
names, and nothing of it is read when there is no row. The values go through the same converters
Django's own compiler picks for those fields, and columns that are no field of the model become
attributes of the instance, as with RawQuerySet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Model

M = TypeVar("M", bound=Model)

# On the connection wrapper: one per thread, kept as long as the thread (its converters belong
# to that connection's backend).
_PLANS_ATTRIBUTE = "_kumo_raw_plans"


@dataclass(frozen=True)
class _Plan:
    init_names: list[str]
    init_positions: list[int]
    annotations: list[tuple[str, int]]
    converters: dict[int, Any]


def raw_models(model: type[M], sql: str, params: Any) -> list[M]:
    """The rows of `sql` as instances of `model` (the statement must select its primary key)."""
    db = connections[DEFAULT_DB_ALIAS]  # this thread's connection (`connection` is a proxy)
    with db.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
        if not rows:
            return []
        plan = _plan(db, model, sql, cursor)
    if plan.converters:
        compiler = db.ops.compiler("SQLCompiler")(None, db, db.alias)
        rows = list(compiler.apply_converters(rows, plan.converters))
    made = []
    for values in rows:
        instance = model.from_db(db.alias, plan.init_names,
                                 [values[pos] for pos in plan.init_positions])
        for name, pos in plan.annotations:
            setattr(instance, name, values[pos])
        made.append(instance)
    return made


def _plan(db: Any, model: type[Model], sql: str, cursor: Any) -> _Plan:
    result = getattr(cursor.cursor, "pgresult", None)  # psycopg: field names without Columns
    width = result.nfields if result is not None else len(cursor.description)
    plans: dict[tuple[str, str, int], _Plan] = db.__dict__.setdefault(_PLANS_ATTRIBUTE, {})
    key = (model._meta.label, sql, width)
    plan = plans.get(key)
    if plan is None:
        plan = plans[key] = _make_plan(db, model, _column_names(cursor, result, width))
    return plan


def _column_names(cursor: Any, result: Any, width: int) -> list[str]:
    if result is not None:
        encoding = cursor.cursor.connection.info.encoding
        return [bytes(result.fname(i) or b"").decode(encoding) for i in range(width)]
    return [column[0] for column in cursor.description]


def _make_plan(db: Any, model: type[Model], names: list[str]) -> _Plan:
    convert = db.introspection.identifier_converter
    columns = [convert(name) for name in names]
    by_column = {convert(f.column): f for f in model._meta.concrete_fields}
    fields = [f for f in model._meta.concrete_fields if convert(f.column) in columns]
    if model._meta.pk not in fields:
        raise ValueError(f"the statement selects no primary key of {model.__name__}")
    compiler = db.ops.compiler("SQLCompiler")(None, db, db.alias)
    matched = [by_column.get(column) for column in columns]
    expressions = [f.get_col(f.model._meta.db_table) if f else None for f in matched]
    return _Plan(
        init_names=[f.attname for f in fields],
        init_positions=[columns.index(convert(f.column)) for f in fields],
        annotations=[(column, pos) for pos, column in enumerate(columns)
                     if by_column.get(column) is None],
        converters=compiler.get_converters(expressions),
    )
