"""raw_rows.raw_models makes from a raw SELECT the very instances Django's RawQuerySet makes (its
fields, their converted values, the extra columns as attributes), works out which column goes to
which field once per statement, and reads nothing of the columns when no row comes back."""

from __future__ import annotations

import pytest
from django.db import DEFAULT_DB_ALIAS, connections

from cloud.compute import raw_rows
from cloud.compute.models import Instance
from tests.factories import make_instance

pytestmark = pytest.mark.django_db

_SQL = (f"SELECT i.*, upper(i.display_name) AS _shout, 7 AS _seven "
        f"FROM {Instance._meta.db_table} i WHERE i.display_name LIKE %s ORDER BY i.display_name")


def _fields(instance: Instance) -> dict:
    return {f.attname: getattr(instance, f.attname) for f in Instance._meta.concrete_fields}


def test_the_same_instances_as_a_raw_queryset_extra_columns_included():
    make_instance("raw-a", tried_hosts=["h1", "h2"], metadata={"k": "v"})
    make_instance("raw-b")

    ours = raw_rows.raw_models(Instance, _SQL, ["raw-%"])
    django = list(Instance.objects.raw(_SQL, ["raw-%"]))

    assert [_fields(i) for i in ours] == [_fields(i) for i in django]
    assert ours[0].tried_hosts == ["h1", "h2"] and ours[0].metadata == {"k": "v"}  # JSON, loaded
    assert [(i._shout, i._seven) for i in ours] == [("RAW-A", 7), ("RAW-B", 7)]
    assert not ours[0]._state.adding and ours[0]._state.db == DEFAULT_DB_ALIAS  # as if loaded


def test_the_plan_is_made_once_per_statement_and_not_at_all_without_a_row(monkeypatch):
    made = []
    make_plan = raw_rows._make_plan
    monkeypatch.setattr(raw_rows, "_make_plan", lambda *a: made.append(a) or make_plan(*a))
    connections[DEFAULT_DB_ALIAS].__dict__.pop(raw_rows._PLANS_ATTRIBUTE, None)

    assert raw_rows.raw_models(Instance, _SQL, ["nothing-%"]) == []
    assert made == []

    make_instance("raw-c")
    for _ in range(3):
        assert [i.display_name for i in raw_rows.raw_models(Instance, _SQL, ["raw-%"])] == ["raw-c"]
    assert len(made) == 1


def test_a_statement_without_the_primary_key_is_refused():
    make_instance("raw-d")
    with pytest.raises(ValueError, match="primary key"):
        raw_rows.raw_models(Instance, f"SELECT display_name FROM {Instance._meta.db_table}", [])
