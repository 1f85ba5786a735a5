"""Changing a flavor after it exists, within what Nova allows.

Nova's flavors are immutable except their description (PUT /flavors/{id}, 2.55), their extra specs
and which projects may use a private one. Anything else — name, sizes, public or not — can only
"change" the way Horizon's flavor edit did it: delete the flavor and create a new one under the same
id, carrying its extra specs and project access over. Servers are unaffected either way: each keeps
the flavor it booted with (Instance.flavor_snapshot).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction

from cloud import errors

from . import flavors
from .models import Flavor, FlavorAccess


def set_description(flavor: Flavor, description: str | None) -> Flavor:
    Flavor.objects.filter(pk=flavor.pk).update(description=description)
    flavor.refresh_from_db()
    return flavor


def projects_with_access(flavor: Flavor) -> list[str]:
    return list(FlavorAccess.objects.filter(flavor=flavor).values_list("project_id", flat=True))


def set_access(flavor: Flavor, project_ids: Iterable[str]) -> list[str]:
    """Exactly these projects may use the flavor (meaningful while it is private)."""
    wanted = set(project_ids)
    if wanted and flavor.is_public:
        raise errors.Conflict("A public flavor is open to every project; make it private first.")
    with transaction.atomic():
        FlavorAccess.objects.filter(flavor=flavor).exclude(project_id__in=wanted).delete()
        have = set(projects_with_access(flavor))
        FlavorAccess.objects.bulk_create(
            FlavorAccess(flavor=flavor, project_id=p) for p in sorted(wanted - have))
    return sorted(wanted)


def set_extra_specs_exactly(flavor: Flavor, specs: dict[str, str]) -> dict[str, str]:
    """The flavor's extra specs become `specs`: others are removed, these set."""
    with transaction.atomic():
        for key in set(flavor.extra_specs) - set(specs):
            flavors.delete_extra_spec(flavor, key)
        flavor.refresh_from_db()
        return flavors.set_extra_specs(flavor, specs) if specs else {}


def replace_flavor(flavor: Flavor, **fields: Any) -> Flavor:
    """Delete `flavor` and create it again, same id, with `fields` (create_flavor's keywords)
    changed; its extra specs and project access are kept. All of it, or nothing."""
    specs = dict(flavor.extra_specs)
    access = projects_with_access(flavor)
    values: dict[str, Any] = {
        "name": flavor.name, "ram": flavor.memory_mb, "vcpus": flavor.vcpus,
        "disk": flavor.root_gb, "swap": flavor.swap, "ephemeral": flavor.ephemeral_gb,
        "rxtx_factor": flavor.rxtx_factor, "is_public": flavor.is_public,
        "description": flavor.description,
    }
    values.update(fields)
    with transaction.atomic():
        flavors.delete_flavor(flavor)
        new = flavors.create_flavor(flavorid=flavor.flavorid, **values)
        if specs:
            flavors.set_extra_specs(new, specs)
        if access and not new.is_public:
            set_access(new, access)
    new.refresh_from_db()
    return new
