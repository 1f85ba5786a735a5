"""The fields an instance button asks for before it runs, and the keywords they become.

A button of the operations registry that names a form (`Button.form`) is offered with the form
of that name in FORMS. When FORMS has none, the form is derived from the signature of the
operation's runner (`@operations.runs`): each keyword after (ctx, instance) becomes a field — an
image choice for `image`/`…image_ref`, a flavor choice for `flavor`/`…flavor_ref`, a number for an
`int`, a tick box for a `bool`, text otherwise; required when it has no default. So a new
operation with a form appears in the instance menus without a dashboard edit. When its fields
deserve better than that (a choice list, a hint), FORMS is the one place to add its form:
`tests/unit/dashboard/test_action_forms.py` fails for a button whose form cannot be built or
whose keywords its runner would refuse.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django import forms

from cloud.compute import guest_kinds, operations
from cloud.compute.models import Instance
from cloud.compute.operations import Operation
from cloud.identity.context import RequestContext
from cloud.images import images as image_services

from .forms import check_name, flavor_choices

FormBuilder = Callable[[RequestContext, Instance, Any], forms.Form]


@dataclass(frozen=True)
class ActionForm:
    """How one button's form is made and what its cleaned data become."""

    build: FormBuilder  # (ctx, instance, POST data or None) → a form
    arguments: Callable[[dict[str, Any]], dict[str, Any]]  # cleaned data → the runner's keywords


class ResizeForm(forms.Form):
    flavor = forms.ChoiceField(label="New flavor")

    def __init__(self, ctx: RequestContext, current: str | None, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["flavor"].choices = [c for c in flavor_choices(ctx) if c[0] != current]


class SnapshotForm(forms.Form):
    name = forms.CharField(label="Snapshot name", max_length=255)

    def clean_name(self) -> str:
        return check_name(self.cleaned_data["name"], "Snapshot name")


def image_choices(ctx: RequestContext, *,
                  for_containers: bool | None = None) -> list[tuple[str, str]]:
    """The images this user may boot; with `for_containers`, only those of that kind (a rebuild
    takes an image of the server's own kind, guest_kinds.ensure_image_fits)."""
    images = image_services.visible_images(ctx).filter(status="active", os_hidden=False)
    return [(str(i.id), i.name or str(i.id)) for i in images.order_by("name")
            if for_containers is None
            or guest_kinds.image_is_for_containers(i.properties) == for_containers]


class RebuildForm(forms.Form):
    image = forms.ChoiceField(label="Image")
    name = forms.CharField(label="New name (blank: keep it)", max_length=255, required=False)

    def __init__(self, ctx: RequestContext, current: str, *args: Any,
                 for_containers: bool | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["image"].choices = image_choices(ctx, for_containers=for_containers)
        self.fields["image"].initial = current

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        return check_name(name) if name else ""


class BackupForm(forms.Form):
    name = forms.CharField(label="Backup name", max_length=255)
    backup_type = forms.CharField(label="Backup type", max_length=255, initial="daily",
                                  help_text="Backups rotate within their type (daily, weekly…).")
    rotation = forms.IntegerField(label="Backups to keep", min_value=0, initial=7)

    def clean_name(self) -> str:
        return check_name(self.cleaned_data["name"], "Backup name")


class RenameForm(forms.Form):
    name = forms.CharField(label="Name", max_length=255)
    description = forms.CharField(
        label="Description", required=False, max_length=255,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def clean_name(self) -> str:
        return check_name(self.cleaned_data["name"])


FORMS: dict[str, ActionForm] = {
    "resize": ActionForm(
        lambda ctx, instance, data: ResizeForm(
            ctx, (instance.flavor_snapshot or {}).get("id"), data),
        lambda cleaned: {"flavor_ref": cleaned["flavor"]},
    ),
    "snapshot": ActionForm(
        lambda ctx, instance, data: SnapshotForm(
            data, initial={"name": f"{instance.display_name}-snapshot"}),
        lambda cleaned: {"name": cleaned["name"]},
    ),
    "create_backup": ActionForm(
        lambda ctx, instance, data: BackupForm(
            data, initial={"name": f"{instance.display_name}-backup"}),
        lambda cleaned: {"name": cleaned["name"], "backup_type": cleaned["backup_type"],
                         "rotation": cleaned["rotation"]},
    ),
    "rebuild": ActionForm(
        lambda ctx, instance, data: RebuildForm(
            ctx, instance.image_ref, data, for_containers=guest_kinds.is_container(instance)),
        lambda cleaned: {"image_ref": cleaned["image"], "name": cleaned["name"] or None},
    ),
    "rename": ActionForm(
        lambda ctx, instance, data: RenameForm(data, initial={
            "name": instance.display_name, "description": instance.description or ""}),
        lambda cleaned: {"name": cleaned["name"], "description": cleaned["description"] or None},
    ),
}


# --- forms derived from a runner's signature


class UnderivableForm(Exception):
    """A runner keyword no field can stand for (a dict, a list…): the form must be written."""


def _runner_keywords(operation: Operation) -> list[inspect.Parameter]:
    runner = operations.runner_for(operation)
    if runner is None:
        return []
    parameters = list(inspect.signature(runner).parameters.values())[2:]  # after ctx, instance
    return [p for p in parameters if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
            and p.name != "operation"]


def _label(name: str) -> str:
    words = [w for w in name.split("_") if w != "ref"]
    return " ".join(words).capitalize() or name


def _field(ctx: RequestContext, parameter: inspect.Parameter) -> forms.Field:
    required = parameter.default is inspect.Parameter.empty
    label = _label(parameter.name)
    # Annotations are strings here (postponed evaluation); their words are enough to choose.
    annotation = str(parameter.annotation).replace("typing.", "")
    if parameter.name == "image" or parameter.name.endswith("image_ref"):
        blank = [] if required else [("", "The instance's own image")]
        return forms.ChoiceField(label=label, required=required,
                                 choices=blank + image_choices(ctx))
    if parameter.name == "flavor" or parameter.name.endswith("flavor_ref"):
        return forms.ChoiceField(label=label, required=required, choices=flavor_choices(ctx))
    if any(word in annotation for word in ("dict", "list", "Mapping", "Sequence")):
        raise UnderivableForm(f"{parameter.name}: {annotation}")
    if "bool" in annotation:
        return forms.BooleanField(label=label, required=False)
    if "int" in annotation:
        return forms.IntegerField(label=label, required=required, min_value=0)
    return forms.CharField(label=label, required=required, max_length=255)


class DerivedForm(forms.Form):
    def __init__(self, ctx: RequestContext, operation: Operation, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        for parameter in _runner_keywords(operation):
            self.fields[parameter.name] = _field(ctx, parameter)


def _derived(operation: Operation) -> ActionForm:
    def arguments(cleaned: dict[str, Any]) -> dict[str, Any]:
        # A blank optional field is left out: the runner's own default applies.
        return {k: v for k, v in cleaned.items() if v not in ("", None)}

    return ActionForm(lambda ctx, instance, data: DerivedForm(ctx, operation, data), arguments)


def action_form(operation: Operation) -> ActionForm | None:
    """The form of the operation's button, or None when it asks for nothing."""
    name = operation.button.form if operation.button else None
    if name is None:
        return None
    return FORMS.get(name) or _derived(operation)
