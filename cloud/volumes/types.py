"""Volume types (Cinder's types API): a default type, `__DEFAULT__` as in Cinder, that every volume
created without one gets; admins create more, give them extra specs, and share private ones with
projects (os-volume-type-access). A non-admin sees the public types and the private ones shared
with their project."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet

from cloud import errors
from cloud.identity.context import RequestContext
from cloud.identity.models import Project
from cloud.ids import parse_uuid

from . import common
from .models import VolumeType

DEFAULT_TYPE = "__DEFAULT__"
DEFAULT_DESCRIPTION = "Default Volume Type"


def default_type() -> VolumeType:
    """The default type (made by migration 0002; made here if an operator deleted it from the
    database behind the API's back)."""
    found = VolumeType.objects.filter(name=DEFAULT_TYPE).first()
    if found is not None:
        return found
    try:
        with transaction.atomic():
            return VolumeType.objects.create(name=DEFAULT_TYPE, description=DEFAULT_DESCRIPTION)
    except IntegrityError:
        return VolumeType.objects.get(name=DEFAULT_TYPE)


def _visible(ctx: RequestContext) -> QuerySet[VolumeType]:
    if ctx.is_admin:
        return VolumeType.objects.all()
    return VolumeType.objects.filter(Q(is_public=True) | Q(projects__id=ctx.project_id)).distinct()


def list_types(ctx: RequestContext, *, is_public: str | None = None) -> list[VolumeType]:
    common.authorize(ctx, "volume:types:read")
    default_type()
    rows = _visible(ctx)
    # Cinder: by default the public types (and, for a non-admin, those shared with them);
    # an admin asks is_public=None for all of them, or false for the private ones.
    if ctx.is_admin:
        if is_public is None or is_public == "":
            rows = rows.filter(is_public=True)
        elif is_public.lower() != "none":
            rows = rows.filter(is_public=common.as_bool(is_public, "is_public"))
    return list(rows.prefetch_related("projects"))


def get_type(ctx: RequestContext, ident: Any, *, by_name: bool = False) -> VolumeType:
    """A type by id (or, for volume create, by name), as the caller may see it."""
    common.authorize(ctx, "volume:types:read")
    if str(ident) == "default":
        return default_type()
    rows = _visible(ctx)
    parsed = parse_uuid(str(ident))
    found = rows.filter(pk=parsed).first() if parsed else None
    if found is None and by_name:
        found = rows.filter(name=str(ident)).first()
    if found is None:
        raise errors.NotFound(f"Volume type {ident} could not be found.")
    return found


def _name(value: Any) -> str:
    name = common.text(value, "name").strip() if value is not None else ""
    if not name:
        raise errors.BadRequest("Volume type name can not be empty.")
    return name


def _specs(value: Any) -> dict[str, str]:
    specs = common.metadata_of(value, "extra_specs")
    return {key: str(item) for key, item in specs.items()}


def create_type(ctx: RequestContext, body: dict[str, Any]) -> VolumeType:
    common.authorize(ctx, "volume:types:manage")
    name = _name(body.get("name"))
    is_public = common.as_bool(body.get("os-volume-type-access:is_public",
                                        body.get("is_public", True)), "is_public")
    try:
        with transaction.atomic():
            return VolumeType.objects.create(
                name=name, description=common.text(body.get("description"), "description",
                                                   max_length=255),
                is_public=is_public, extra_specs=_specs(body.get("extra_specs")))
    except IntegrityError:
        raise errors.Conflict(f"Volume Type {name} already exists.") from None


def update_type(ctx: RequestContext, type_id: str, body: dict[str, Any]) -> VolumeType:
    common.authorize(ctx, "volume:types:manage")
    vtype = get_type(ctx, type_id)
    if not any(key in body for key in ("name", "description", "is_public")):
        raise errors.BadRequest("Specify volume type name, description, is_public or a "
                                "combination thereof.")
    if "name" in body:
        name = _name(body["name"])
        if vtype.name == DEFAULT_TYPE and name != DEFAULT_TYPE:
            raise errors.BadRequest("The default volume type cannot be renamed.")
        vtype.name = name
    if "description" in body:
        vtype.description = common.text(body["description"], "description")
    if "is_public" in body:
        vtype.is_public = common.as_bool(body["is_public"], "is_public")
    try:
        with transaction.atomic():
            vtype.save()
    except IntegrityError:
        raise errors.Conflict(f"Volume Type {vtype.name} already exists.") from None
    return vtype


def delete_type(ctx: RequestContext, type_id: str) -> None:
    common.authorize(ctx, "volume:types:manage")
    vtype = get_type(ctx, type_id)
    if vtype.name == DEFAULT_TYPE:
        raise errors.BadRequest("Default volume type can not be deleted.")
    if vtype.volumes.exists():
        raise errors.BadRequest("Target volume type is still in use.")
    vtype.delete()


# --- extra specs


def get_extra_specs(ctx: RequestContext, type_id: str) -> dict[str, str]:
    return dict(get_type(ctx, type_id).extra_specs)


def get_extra_spec(ctx: RequestContext, type_id: str, key: str) -> dict[str, str]:
    specs = get_type(ctx, type_id).extra_specs
    if key not in specs:
        raise errors.NotFound(f"Volume Type {type_id} has no extra specs with key {key}.")
    return {key: specs[key]}


def set_extra_specs(ctx: RequestContext, type_id: str, specs: Any) -> dict[str, str]:
    common.authorize(ctx, "volume:types:manage")
    wanted = _specs(specs)
    if not wanted:
        raise errors.BadRequest("No extra specs given.")
    with transaction.atomic():
        vtype = get_type(ctx, type_id)
        VolumeType.objects.select_for_update().filter(pk=vtype.pk).first()
        vtype.refresh_from_db()
        vtype.extra_specs = {**vtype.extra_specs, **wanted}
        vtype.save(update_fields=["extra_specs", "updated_at"])
    return wanted


def delete_extra_spec(ctx: RequestContext, type_id: str, key: str) -> None:
    common.authorize(ctx, "volume:types:manage")
    with transaction.atomic():
        vtype = get_type(ctx, type_id)
        VolumeType.objects.select_for_update().filter(pk=vtype.pk).first()
        vtype.refresh_from_db()
        if key not in vtype.extra_specs:
            raise errors.NotFound(f"Volume Type {type_id} has no extra specs with key {key}.")
        vtype.extra_specs = {k: v for k, v in vtype.extra_specs.items() if k != key}
        vtype.save(update_fields=["extra_specs", "updated_at"])


# --- private types and the projects they are shared with


def list_access(ctx: RequestContext, type_id: str) -> list[str]:
    common.authorize(ctx, "volume:types:manage")
    vtype = get_type(ctx, type_id)
    if vtype.is_public:
        raise errors.NotFound(f"Volume type access not found for {type_id} combination.")
    return sorted(str(pid) for pid in vtype.projects.values_list("id", flat=True))


def _private(ctx: RequestContext, type_id: str) -> VolumeType:
    common.authorize(ctx, "volume:types:manage")
    vtype = get_type(ctx, type_id)
    if vtype.is_public:
        raise errors.BadRequest("Invalid volume type: Type access modification is not "
                                "applicable to public volume type.")
    return vtype


def _project(project_id: Any) -> Project:
    project = Project.objects.filter(pk=str(project_id)).first()
    if project is None:
        raise errors.NotFound(f"Project ID {project_id} could not be found.")
    return project


def add_access(ctx: RequestContext, type_id: str, project_id: Any) -> None:
    vtype = _private(ctx, type_id)
    project = _project(project_id)
    if vtype.projects.filter(pk=project.pk).exists():
        raise errors.Conflict(f"Volume type access for {type_id} / {project_id} combination "
                              "already exists.")
    vtype.projects.add(project)


def remove_access(ctx: RequestContext, type_id: str, project_id: Any) -> None:
    vtype = _private(ctx, type_id)
    if not vtype.projects.filter(pk=str(project_id)).exists():
        raise errors.NotFound(f"Volume type access not found for {type_id} / {project_id} "
                              "combination.")
    vtype.projects.remove(str(project_id))
