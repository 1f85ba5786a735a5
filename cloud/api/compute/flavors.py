"""/flavors: list, detail, show, create, update (2.55: the description), delete; and who may use
a private flavor (os-flavor-access, and the addTenantAccess/removeTenantAccess actions).

By microversion: 2.55 description; 2.61 extra_specs in the flavor; 2.75 unknown list parameters
refused; 2.102 a `name` filter, and no rxtx_factor (neither in bodies nor at create)."""

from __future__ import annotations

import copy
from typing import Any

from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response

from cloud import errors
from cloud.compute import flavors
from cloud.identity import policy
from cloud.validation import name_schema

from ..base import ComputeView, Versioned
from . import bodies, params

_INT = {"type": ["integer", "string"], "pattern": r"^\s*[0-9]+\s*$", "minimum": 0}
_CREATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["flavor"],
    "properties": {
        "flavor": {
            "type": "object",
            "required": ["name", "ram", "vcpus", "disk"],
            "properties": {
                "name": name_schema(255),
                "id": {
                    "type": ["string", "integer", "null"],
                    "pattern": r"^(?! )[a-zA-Z0-9. _-]{1,255}(?<! )$",
                },
                "ram": {**_INT, "minimum": 1},
                "vcpus": {**_INT, "minimum": 1},
                "disk": _INT,
                "swap": _INT,
                "OS-FLV-EXT-DATA:ephemeral": _INT,
                # Nova's rule: a positive number that fits a float column, so never "nan" or "inf".
                "rxtx_factor": {"type": ["number", "string"], "pattern": r"^[0-9]+(\.[0-9]+)?$",
                                "exclusiveMinimum": 0, "maximum": 3.40282e38},
                "os-flavor-access:is_public": {"type": ["boolean", "string"]},
            },
            "additionalProperties": False,
        }
    },
    "additionalProperties": False,
}
_DESCRIPTION = {"type": ["string", "null"], "maxLength": 65535,
                "pattern": r"^[^\x00-\x1f\x7f]*$"}
_CREATE_255 = copy.deepcopy(_CREATE_SCHEMA)
_CREATE_255["properties"]["flavor"]["properties"]["description"] = _DESCRIPTION
_CREATE_2102 = copy.deepcopy(_CREATE_255)
del _CREATE_2102["properties"]["flavor"]["properties"]["rxtx_factor"]
_UPDATE = {
    "type": "object",
    "required": ["flavor"],
    "properties": {"flavor": {
        "type": "object",
        "required": ["description"],
        "properties": {"description": _DESCRIPTION},
        "additionalProperties": False,
    }},
    "additionalProperties": False,
}
_TENANT = {"type": "string", "minLength": 1, "maxLength": 255}
_ACCESS_ACTION: dict[str, Any] = {
    "type": "object",
    "minProperties": 1,
    "maxProperties": 1,
    "properties": {
        action: {"type": "object", "required": ["tenant"], "properties": {"tenant": _TENANT},
                 "additionalProperties": False}
        for action in ("addTenantAccess", "removeTenantAccess")
    },
    "additionalProperties": False,
}


def _int(value, field: str, minimum: int = 0) -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        raise errors.BadRequest(f"Invalid input for field/attribute {field}.") from None
    if number < minimum or number > 2**31 - 1:
        raise errors.BadRequest(f"Invalid input for field/attribute {field}. Out of range.")
    return number


def _extra_specs_shown(view: ComputeView) -> bool:
    return policy.allowed(view.ctx, "compute:flavor_extra_specs:index")


class FlavorList(ComputeView):
    detail = False
    body_schemas = {"POST": Versioned(("2.1", _CREATE_SCHEMA), ("2.55", _CREATE_255),
                                      ("2.102", _CREATE_2102))}
    query_params = {"GET": ("is_public", "minDisk", "minRam", "sort_key", "sort_dir", "limit",
                            "marker", "name")}
    strict_query_from = "2.75"

    def get(self, request: Request) -> Response:
        self.authorize("compute:flavors:index")
        query = request.query_params
        name = query.get("name")
        if name is not None and not self.version.at_least("2.102"):
            if self.version.at_least("2.75"):
                raise errors.BadRequest("Invalid input for query parameters name. Additional "
                                        "properties are not allowed ('name' was unexpected)")
            name = None
        if query.get("sort_key") == "rxtx_factor" and self.version.at_least("2.102"):
            raise errors.BadRequest("Invalid input for query parameters sort_key. Value: "
                                    "rxtx_factor.")
        raw_public = query.get("is_public")
        is_public = None
        if raw_public is not None and raw_public.lower() != "none":
            is_public = params.bool_param(query, "is_public")
        elif raw_public is None:
            is_public = True
        min_disk = _int(query["minDisk"], "minDisk") if "minDisk" in query else None
        min_ram = _int(query["minRam"], "minRam") if "minRam" in query else None
        qs = flavors.list_flavors(
            self.ctx,
            is_public=is_public,
            min_disk=min_disk,
            min_ram=min_ram,
            sort_key=query.get("sort_key", "flavorid"),
            sort_dir=query.get("sort_dir", "asc"),
            name=name,
        )
        limit = params.limit_param(query)
        items = flavors.page(qs, query.get("marker"), limit)
        if self.detail:
            shown = _extra_specs_shown(self)
            listed = [bodies.flavor_detail(f, self.version, self.compute_url, shown)
                      for f in items]
        else:
            listed = [bodies.flavor_summary(f, self.version, self.compute_url) for f in items]
        body: dict = {"flavors": listed}
        path = "flavors/detail" if self.detail else "flavors"
        links = params.next_link(self.compute_url(path), items, limit, lambda f: f.flavorid)
        if links:
            body["flavors_links"] = links
        return Response(body)

    def post(self, request: Request) -> Response:
        self.authorize("compute:flavors:create")
        spec = self.valid_body("flavor")
        is_public = spec.get("os-flavor-access:is_public", True)
        if isinstance(is_public, str):
            is_public = is_public.strip().lower() in ("true", "1", "yes", "t", "on")
        try:
            rxtx = float(spec.get("rxtx_factor", 1.0))
        except (TypeError, ValueError):
            raise errors.BadRequest("Invalid input for field/attribute rxtx_factor.") from None
        flavor_id = spec.get("id")
        flavor = flavors.create_flavor(
            name=spec["name"],
            ram=_int(spec["ram"], "ram", 1),
            vcpus=_int(spec["vcpus"], "vcpus", 1),
            disk=_int(spec["disk"], "disk"),
            flavorid=None if flavor_id is None else str(flavor_id),
            swap=_int(spec.get("swap", 0) or 0, "swap"),
            ephemeral=_int(spec.get("OS-FLV-EXT-DATA:ephemeral", 0) or 0, "ephemeral"),
            rxtx_factor=rxtx,
            is_public=is_public,
            description=spec.get("description"),
        )
        return Response({"flavor": bodies.flavor_detail(flavor, self.version, self.compute_url,
                                                         _extra_specs_shown(self))})


class FlavorDetailList(FlavorList):
    detail = True
    http_method_names = ["get", "head", "options"]  # flavors are created at /flavors


class FlavorItem(ComputeView):
    body_schemas = {"PUT": _UPDATE}

    def get(self, request: Request, flavor_id: str) -> Response:
        self.authorize("compute:flavors:show")
        flavor = flavors.get_flavor(self.ctx, flavor_id)
        return Response({"flavor": bodies.flavor_detail(flavor, self.version, self.compute_url,
                                                         _extra_specs_shown(self))})

    def put(self, request: Request, flavor_id: str) -> Response:
        self.require_version("2.55")
        self.authorize("compute:flavors:update")
        spec = self.valid_body("flavor")
        flavor = flavors.update_description(flavors.get_flavor(self.ctx, flavor_id),
                                            spec["description"])
        return Response({"flavor": bodies.flavor_detail(flavor, self.version, self.compute_url,
                                                         _extra_specs_shown(self))})

    def delete(self, request: Request, flavor_id: str) -> Response:
        self.authorize("compute:flavors:delete")
        flavors.delete_flavor(flavors.get_flavor(self.ctx, flavor_id))
        return Response(status=202)


def _access_body(flavor_id: str, projects: list[str]) -> dict:
    return {"flavor_access": [{"flavor_id": flavor_id, "tenant_id": p} for p in projects]}


class FlavorAccessList(ComputeView):
    """GET /flavors/{id}/os-flavor-access: the projects that may use a private flavor."""

    def get(self, request: Request, flavor_id: str) -> Response:
        self.authorize("compute:flavor_access:index")
        flavor = flavors.get_flavor(self.ctx, flavor_id)
        return Response(_access_body(flavor.flavorid, flavors.access_list(flavor)))


class FlavorAction(ComputeView):
    """POST /flavors/{id}/action: addTenantAccess or removeTenantAccess (200 with the new list)."""

    body_schemas = {"POST": _ACCESS_ACTION}

    def post(self, request: Request, flavor_id: str) -> Response:
        body = self.body()
        if len(body) != 1 or next(iter(body)) not in _ACCESS_ACTION["properties"]:
            raise errors.BadRequest("The flavor action body holds exactly one of "
                                    "addTenantAccess and removeTenantAccess.")
        ((action, _),) = body.items()
        adding = action == "addTenantAccess"
        self.authorize("compute:flavor_access:add" if adding else "compute:flavor_access:remove")
        tenant = self.valid_body()[action]["tenant"]
        flavor = flavors.get_flavor(self.ctx, flavor_id)
        if adding:
            projects = flavors.add_access(flavor, tenant,
                                          refuse_public=self.version.at_least("2.7"))
        else:
            projects = flavors.remove_access(flavor, tenant)
        return Response(_access_body(flavor.flavorid, projects))


urlpatterns = [
    path("/flavors/<str:flavor_id>/os-flavor-access", FlavorAccessList.as_view()),
    path("/flavors/<str:flavor_id>/action", FlavorAction.as_view()),
]
