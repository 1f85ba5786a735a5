"""A boot's reads and writes in the web process, written out once per process instead of compiled by
the ORM on every POST /servers (PostgreSQL; SQLite, which the laptop demo uses, keeps the ORM path).

py-spy put a third of the web's CPU for a boot in these few statements, most of it in Django
building their SQL afresh each time (the Instance model is fifty columns wide) rather than in
PostgreSQL or psycopg. Here:

- the flavor and the image a boot names are read together, with whether the caller's project has
  access to a private flavor or is a member of a shared image, in one round trip
  (`flavor_and_image`); the rules applied to the rows are the ORM path's own
  (flavors.usable_flavor, visibility.visible_image);
- the instance and its "create" action are written by one statement (`insert_with_action`), the
  action's INSERT riding on the instance's as a data-modifying WITH, each row one JSON parameter.

The rows read become the model instances the ORM would have made (Model.from_db, through each
field's converters), and the rows written hold what the ORM would have written (each field's
pre_save and get_prep_value): tests/unit/compute/test_boot_sql.py compares both paths.
"""

from __future__ import annotations

import datetime
import decimal
import functools
import json
import uuid
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from django.db import connection
from django.db.models import Model

from cloud.identity.context import RequestContext
from cloud.images.models import Image, ImageMember

from .models import Flavor, FlavorAccess, Instance, InstanceAction

M = TypeVar("M", bound=Model)


def available() -> bool:
    """Whether this database takes the written-out statements (PostgreSQL)."""
    return connection.vendor == "postgresql"


class _Reader(Generic[M]):
    """A model's concrete columns in a written-out SELECT, and the instance the ORM would make of
    them: each value through the converters the ORM's compiler would apply."""

    def __init__(self, model: type[M], alias: str) -> None:
        fields = model._meta.concrete_fields
        self.model = model
        self.names = [f.attname for f in fields]
        qn = connection.ops.quote_name
        self.select = ", ".join(f"{alias}.{qn(f.column)}" for f in fields)
        self.width = len(fields)
        self.pk_index = fields.index(model._meta.pk)
        self.converters: list[tuple[int, list, Any]] = []
        for index, field in enumerate(fields):
            column = field.get_col(alias)
            found = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
            if found:
                self.converters.append((index, found, column))

    def build(self, values: Sequence[Any]) -> M:
        row = list(values)
        for index, converters, column in self.converters:
            for converter in converters:
                row[index] = converter(row[index], column, connection)
        return self.model.from_db(connection.alias, self.names, row)


class _Writer(Generic[M]):
    """A model's INSERT of one row from a single JSON parameter (jsonb_populate_record), and that
    parameter for an unsaved instance: each concrete column (an AutoField's left to the database)
    with the value the ORM's save() would write, from the field's pre_save and get_prep_value.

    One parameter rather than one per column: psycopg keeps its conversion of a statement's text
    only for statements of at most 50 parameters, and the instance has 50 columns already."""

    def __init__(self, model: type[M]) -> None:
        meta = model._meta
        self.auto = meta.auto_field
        self.fields = [f for f in meta.concrete_fields if f is not self.auto]
        qn = connection.ops.quote_name
        columns = ", ".join(qn(f.column) for f in self.fields)
        table = qn(meta.db_table)
        self.sql = (f"INSERT INTO {table} ({columns}) SELECT {columns}"
                    f" FROM jsonb_populate_record(NULL::{table}, %s::jsonb)")
        self.returning = f" RETURNING {qn(self.auto.column)}" if self.auto is not None else ""

    def param(self, obj: M) -> str:
        row = {f.column: f.get_prep_value(f.pre_save(obj, True)) for f in self.fields}
        return json.dumps(row, default=_json_value, allow_nan=False)


def _json_value(value: object) -> object:
    """What JSON cannot hold as it is, in the text PostgreSQL reads back as the column's type."""
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID | decimal.Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} has no JSON form for a column")


@functools.cache
def _statements() -> dict[str, Any]:
    """Built at the first boot (the connection's vendor decides the quoting), then kept."""
    flavor, image = _Reader(Flavor, "f"), _Reader(Image, "i")
    access = FlavorAccess._meta.db_table
    members = ImageMember._meta.db_table
    read = (
        f"SELECT {flavor.select},"
        f" CASE WHEN NOT f.is_public THEN EXISTS (SELECT 1 FROM {access} a"
        "  WHERE a.flavor_id = f.id AND a.project_id = %(project)s) END,"
        f" {image.select},"
        # Only for someone else's shared image: its owner sees it without being a member.
        " CASE WHEN i.visibility = 'shared' AND i.owner_id IS DISTINCT FROM %(project)s"
        f" THEN EXISTS (SELECT 1 FROM {members} m"
        "  WHERE m.image_id = i.id AND m.project_id = %(project)s) END"
        f" FROM (SELECT 1) one"
        f" LEFT JOIN {Flavor._meta.db_table} f ON f.flavorid = %(flavorid)s"
        f" LEFT JOIN {Image._meta.db_table} i ON i.id = %(image)s"
        " LIMIT 1"
    )
    instance, action = _Writer(Instance), _Writer(InstanceAction)
    # Every statement in a WITH runs to completion, read or not; the action's key to the instance
    # is checked at commit (Django's foreign keys are deferred on PostgreSQL).
    insert = f"WITH instance AS ({instance.sql}) {action.sql}{action.returning}"
    return {"flavor": flavor, "image": image, "read": read, "instance": instance,
            "action": action, "insert": insert}


def flavor_and_image(ctx: RequestContext, flavorid: str,
                     image_id: object | None) -> tuple[Flavor | None, Image | None]:
    """The flavor with this flavorid if the caller may use it (flavors.usable_flavor's rule) and,
    with an `image_id`, the image if the caller's project may see it (visibility.visible_image's
    rule), else None for either: one round trip."""
    s = _statements()
    flavor_reader: _Reader[Flavor] = s["flavor"]
    image_reader: _Reader[Image] = s["image"]
    with connection.cursor() as cursor:
        cursor.execute(s["read"], {
            "flavorid": flavorid, "project": ctx.project_id or "",
            "image": None if image_id is None else Image._meta.pk.get_db_prep_value(
                image_id, connection)})
        row = cursor.fetchone()
    flavor_values = row[:flavor_reader.width]
    has_access = row[flavor_reader.width]
    image_values = row[flavor_reader.width + 1:-1]
    is_member = row[-1]
    flavor = None
    if flavor_values[flavor_reader.pk_index] is not None:  # there is such a flavor
        flavor = flavor_reader.build(flavor_values)
        if not (ctx.is_admin or flavor.is_public or has_access):
            flavor = None
    image = None
    if image_values[image_reader.pk_index] is not None:
        image = image_reader.build(image_values)
        if not (ctx.is_admin or image.visibility in ("public", "community")
                or image.owner_id == ctx.project_id
                or (image.visibility == "shared" and is_member)):
            image = None
    return flavor, image


def insert_with_action(instance: Instance, action: InstanceAction) -> None:
    """Write the unsaved `instance` and its unsaved `action` (for it) in one statement; both are
    saved model instances after, as Model.save() leaves them."""
    s = _statements()
    params = [s["instance"].param(instance), s["action"].param(action)]
    with connection.cursor() as cursor:
        cursor.execute(s["insert"], params)
        action.pk = cursor.fetchone()[0]
    for obj in (instance, action):
        obj._state.adding = False
        obj._state.db = connection.alias
