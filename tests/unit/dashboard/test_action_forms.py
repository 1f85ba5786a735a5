"""The instance menus: every button the registry declares (and rebuild and rename) is offered with
a form that its runner accepts, and a new operation with a form needs no dashboard edit."""

from __future__ import annotations

import dataclasses
import inspect

import pytest
from django import forms

from cloud.compute import operations
from cloud.compute.operations import Button, Operation
from cloud.dashboard import action_forms, buttons
from cloud.identity.context import RequestContext
from tests.factories import make_server

from .conftest import signed_in

pytestmark = pytest.mark.django_db

WITH_FORMS = [op for op in buttons.MENU.values() if action_forms.action_form(op) is not None]


def _ctx(persona) -> RequestContext:
    return RequestContext(user_id=persona.user.pk, user_name=persona.user.name,
                          project_id=persona.project.pk, project_name=persona.project.name,
                          roles=("member", "reader"))


def _filled(form: forms.Form) -> dict[str, object]:
    """A value every field accepts: the last choice offered, a word, a number, a tick."""
    data: dict[str, object] = {}
    for name, field in form.fields.items():
        if isinstance(field, forms.ChoiceField):
            data[name] = [value for value, _ in field.choices if value][-1]
        elif isinstance(field, forms.BooleanField):
            data[name] = "on"
        elif isinstance(field, forms.IntegerField):
            data[name] = "1"
        else:
            data[name] = "word"
    return data


def test_the_menus_hold_the_registrys_buttons_then_rebuild_and_rename():
    registry = {name for name, op in operations.REGISTRY.items() if op.button}
    assert registry <= set(buttons.MENU)
    assert {"rebuild", "rename"} <= set(buttons.MENU)
    assert list(buttons.MENU)[-2:] == ["rename", "delete"]


@pytest.mark.parametrize("op", WITH_FORMS, ids=lambda op: op.name)
def test_every_form_in_the_menus_gives_keywords_its_runner_takes(op, member, image, flavor,
                                                                 big_flavor):
    instance = make_server(member, "vm1", image_ref=str(image.id))
    ctx = _ctx(member)
    spec = action_forms.action_form(op)
    form = spec.build(ctx, instance, None)
    assert form.fields, "a form without fields: drop Button.form instead"
    bound = spec.build(ctx, instance, _filled(form))
    assert bound.is_valid(), bound.errors
    arguments = spec.arguments(bound.cleaned_data)
    if op is buttons.RENAME:
        assert set(arguments) <= {"name", "description"}
        return
    runner = operations.runner_for(op)
    inspect.signature(runner).bind(ctx, instance, **arguments)  # TypeError: a keyword it refuses


@pytest.mark.parametrize("op", [op for op in buttons.MENU.values()
                                if action_forms.action_form(op) is None], ids=lambda op: op.name)
def test_every_button_without_a_form_has_a_runner_that_needs_nothing_more(op):
    # Pressed alone or in bulk, it is called as runner(ctx, instance): a required keyword would
    # need a form (Button.form).
    runner = operations.runner_for(op)
    assert runner is not None
    inspect.signature(runner).bind(object(), object())


def test_an_operation_with_a_form_the_dashboard_does_not_know_gets_one_from_its_runner(
    monkeypatch, member, image
):
    def create_backup(ctx, instance, name: str, backup_type: str, rotation: int,
                      rescue_image_ref: str | None = None, verbose: bool = False) -> None:
        called.update(name=name, backup_type=backup_type, rotation=rotation,
                      image_ref=rescue_image_ref)

    called: dict = {}
    backup = Operation("backup", rule="compute:servers:create_image", vm_states=None,
                       button=Button("Back up", "Back up {name}?", "Backing up {name}.",
                                     form="backup"))
    monkeypatch.setitem(operations.REGISTRY, "backup", backup)
    monkeypatch.setitem(operations._RUNNERS, "backup", create_backup)
    assert "backup" in buttons._menu()

    spec = action_forms.action_form(backup)
    form = spec.build(_ctx(member), None, None)
    fields = form.fields
    assert list(fields) == ["name", "backup_type", "rotation", "rescue_image_ref", "verbose"]
    assert fields["name"].required and isinstance(fields["rotation"], forms.IntegerField)
    assert not fields["rescue_image_ref"].required
    assert (str(image.id), "cirros") in fields["rescue_image_ref"].choices
    assert isinstance(fields["verbose"], forms.BooleanField)
    bound = spec.build(_ctx(member), None, {"name": "b1", "backup_type": "daily", "rotation": "2",
                                            "rescue_image_ref": ""})
    assert bound.is_valid(), bound.errors
    operations.perform(_ctx(member), make_server(member), "backup",
                       **spec.arguments(bound.cleaned_data))
    assert called == {"name": "b1", "backup_type": "daily", "rotation": 2, "image_ref": None}


def test_a_runner_keyword_no_field_can_hold_is_reported(monkeypatch, member):
    def tag(ctx, instance, tags: list[str]) -> None: ...

    op = Operation("tag", rule="compute:servers:update", vm_states=None,
                   button=Button("Tag", "Tag {name}?", "Tagged {name}.", form="tag"))
    monkeypatch.setitem(operations._RUNNERS, "tag", tag)
    with pytest.raises(action_forms.UnderivableForm):
        action_forms.action_form(op).build(_ctx(member), None, None)


def test_rename_changes_the_name_and_description_through_the_service(member, sent):
    vm = make_server(member, "old-name")
    client = signed_in(member)
    dialog = client.get(f"/instances/{vm.uuid}/do/rename").content.decode()
    assert 'value="old-name"' in dialog
    response = client.post(f"/instances/{vm.uuid}/do/rename",
                           {"name": "new-name", "description": "the web tier"})
    assert response.status_code == 302
    vm.refresh_from_db()
    assert (vm.display_name, vm.description) == ("new-name", "the web tier")
    assert client.post(f"/instances/{vm.uuid}/do/rename", {"name": ""}).status_code == 400


def test_a_locked_instance_cannot_be_renamed_by_a_member(member, admin, sent):
    vm = make_server(member, "vm1", locked=True)
    client = signed_in(member)
    assert f"/instances/{vm.uuid}/do/rename" not in client.get("/instances/").content.decode()
    assert client.post(f"/instances/{vm.uuid}/do/rename", {"name": "x"}).status_code == 409
    assert signed_in(admin).post(f"/instances/{vm.uuid}/do/rename",
                                 {"name": "x"}).status_code == 302
    vm.refresh_from_db()
    assert vm.display_name == "x"


def test_rebuild_asks_for_an_image_and_starts_the_rebuild(member, image, sent):
    from cloud.images.models import Image

    other_image = Image.objects.create(name="debian", status="active", disk_format="qcow2",
                                       container_format="bare", visibility="public", size=1)
    vm = make_server(member, "vm1", image_ref=str(image.id))
    client = signed_in(member)
    table = client.get("/instances/").content.decode()
    assert f"/instances/{vm.uuid}/do/rebuild" in table
    dialog = client.get(f"/instances/{vm.uuid}/do/rebuild").content.decode()
    assert "debian" in dialog and "Its disk is recreated" in dialog
    assert f'value="{image.id}" selected' in dialog  # its own image, preselected
    response = client.post(f"/instances/{vm.uuid}/do/rebuild",
                           {"image": str(other_image.id), "name": "rebuilt"})
    assert response.status_code == 302
    vm.refresh_from_db()
    assert vm.task_state == "rebuilding" and vm.image_ref == str(other_image.id)
    assert vm.display_name == "rebuilt"
    assert [m.name for m in sent][-1].endswith("rebuild")


def test_rebuild_is_not_offered_where_its_state_rule_forbids_it(member, image):
    vm = make_server(member, "vm1", vm_state="paused")
    page = signed_in(member).get(f"/instances/{vm.uuid}/").content.decode()
    assert f"/instances/{vm.uuid}/do/rebuild" not in page
    assert f"/instances/{vm.uuid}/do/rename" in page


def test_a_registry_button_wins_over_the_dashboards_own(monkeypatch):
    own = Button("Rebuild it", "q {name}", "d {name}", form="rebuild")
    rebuilt = dataclasses.replace(operations.REGISTRY["rebuild"], button=own)
    monkeypatch.setitem(operations.REGISTRY, "rebuild", rebuilt)
    assert buttons._menu()["rebuild"].button.label == "Rebuild it"
