"""Changing a flavor after it exists, within what Nova allows (for the dashboard's flavor edit).

Nova's flavors are immutable except their description (PUT /flavors/{id}, 2.55), their extra specs
and which projects may use a private one; those change in place through flavors.py, as the API
changes them. Anything else — name, sizes, public or not — can only "change" the way Horizon's
flavor edit did it: delete the flavor and create a new one under the same id, carrying its extra
specs and project access over. Servers are unaffected either way: each keeps the flavor it booted
with (Instance.flavor_snapshot).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from cloud import errors

from . import flavors
from .models import Flavor

# create_flavor's keywords that no API changes in place.
IMMUTABLE = ("name", "ram", "vcpus", "disk", "swap", "ephemeral", "rxtx_factor", "is_public")


@dataclass
class FlavorEdit:
    """What a flavor should become, whole."""

    immutable: dict[str, Any]  # IMMUTABLE keywords → values; one left out keeps its value
    description: str | None
    extra_specs: dict[str, str] = field(default_factory=dict)
    projects: list[str] = field(default_factory=list)  # who may use it, when private


def projects_with_access(flavor: Flavor) -> list[str]:
    return list(flavor.access.order_by("id").values_list("project_id", flat=True))


def set_access(flavor: Flavor, project_ids: Iterable[str]) -> list[str]:
    """Exactly these projects may use the (private) flavor: the others lose access."""
    wanted = list(dict.fromkeys(project_ids))
    if wanted and flavor.is_public:
        raise errors.Conflict("A public flavor is open to every project; make it private first.")
    have = projects_with_access(flavor)
    with transaction.atomic():
        for project_id in have:
            if project_id not in wanted:
                flavors.remove_access(flavor, project_id)
        for project_id in wanted:
            if project_id not in have:
                flavors.add_access(flavor, project_id)
    return wanted


def set_extra_specs_exactly(flavor: Flavor, specs: dict[str, str]) -> dict[str, str]:
    """The flavor's extra specs become `specs`: others are removed, these set."""
    with transaction.atomic():
        for key in set(flavor.extra_specs) - set(specs):
            flavors.delete_extra_spec(flavor, key)
        flavor.refresh_from_db()
        return flavors.set_extra_specs(flavor, specs) if specs else {}


def replace_flavor(flavor: Flavor, **changes: Any) -> Flavor:
    """Delete `flavor` and create it again, same id, with `changes` (IMMUTABLE keywords); its
    description, extra specs and project access are kept. All of it, or nothing."""
    unknown = set(changes) - set(IMMUTABLE)
    if unknown:
        raise TypeError(f"replace_flavor() got fields that change in place: {sorted(unknown)}")
    specs = dict(flavor.extra_specs)
    access = projects_with_access(flavor)
    values: dict[str, Any] = {
        "name": flavor.name, "ram": flavor.memory_mb, "vcpus": flavor.vcpus,
        "disk": flavor.root_gb, "swap": flavor.swap, "ephemeral": flavor.ephemeral_gb,
        "rxtx_factor": flavor.rxtx_factor, "is_public": flavor.is_public,
        "description": flavor.description, **changes,
    }
    with transaction.atomic():
        flavors.delete_flavor(flavor)
        new = flavors.create_flavor(flavorid=flavor.flavorid, **values)
        if specs:
            flavors.set_extra_specs(new, specs)
        if access and not new.is_public:
            set_access(new, access)
    new.refresh_from_db()
    return new


def edit_flavor(flavor: Flavor, edit: FlavorEdit) -> tuple[Flavor, list[str]]:
    """Apply `edit` in one transaction: replaced first when an immutable field changes, then the
    description, extra specs and access in place. The flavor after, and the immutable fields
    that made it a replacement (empty: changed in place)."""
    current = {
        "name": flavor.name, "ram": flavor.memory_mb, "vcpus": flavor.vcpus,
        "disk": flavor.root_gb, "swap": flavor.swap, "ephemeral": flavor.ephemeral_gb,
        "rxtx_factor": flavor.rxtx_factor, "is_public": flavor.is_public,
    }
    replaced = [k for k in IMMUTABLE if k in edit.immutable and edit.immutable[k] != current[k]]
    with transaction.atomic():
        if replaced:
            flavor = replace_flavor(flavor, **{k: edit.immutable[k] for k in replaced})
        if edit.description != flavor.description:
            flavor = flavors.update_description(flavor, edit.description)
        if edit.extra_specs != flavor.extra_specs:
            set_extra_specs_exactly(flavor, edit.extra_specs)
        if sorted(edit.projects) != sorted(projects_with_access(flavor)):
            set_access(flavor, edit.projects)
    flavor.refresh_from_db()
    return flavor, replaced
