"""/flavors: list, detail, show, create, delete."""

from __future__ import annotations

from rest_framework.request import Request
from rest_framework.response import Response

from cloud import errors
from cloud.compute import flavors
from cloud.validation import name_schema

from ..base import ComputeView
from . import bodies, params

_INT = {"type": ["integer", "string"], "pattern": r"^\s*[0-9]+\s*$", "minimum": 0}
_CREATE_SCHEMA = {
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
                "description": {"type": ["string", "null"], "maxLength": 65535},
            },
            "additionalProperties": False,
        }
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


class FlavorList(ComputeView):
    detail = False
    body_schemas = {"POST": _CREATE_SCHEMA}
    query_params = {"GET": ("is_public", "minDisk", "minRam", "sort_key", "sort_dir", "limit",
                            "marker")}

    def get(self, request: Request) -> Response:
        self.authorize("compute:flavors:index")
        query = request.query_params
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
        )
        limit = params.limit_param(query)
        items = flavors.page(qs, query.get("marker"), limit)
        build = bodies.flavor_detail if self.detail else bodies.flavor_summary
        body = {"flavors": [build(f, self.version, self.compute_url) for f in items]}
        path = "flavors/detail" if self.detail else "flavors"
        links = params.next_link(self.compute_url(path), items, limit, lambda f: f.flavorid)
        if links:
            body["flavors_links"] = links
        return Response(body)

    def post(self, request: Request) -> Response:
        self.authorize("compute:flavors:create")
        spec = self.valid_body("flavor")
        if "description" in spec and not self.version.at_least("2.55"):
            raise errors.BadRequest("Flavor description needs microversion 2.55 or later.")
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
        return Response({"flavor": bodies.flavor_detail(flavor, self.version, self.compute_url)})


class FlavorDetailList(FlavorList):
    detail = True
    http_method_names = ["get", "head", "options"]  # flavors are created at /flavors


class FlavorItem(ComputeView):
    def get(self, request: Request, flavor_id: str) -> Response:
        self.authorize("compute:flavors:show")
        flavor = flavors.get_flavor(self.ctx, flavor_id)
        return Response({"flavor": bodies.flavor_detail(flavor, self.version, self.compute_url)})

    def delete(self, request: Request, flavor_id: str) -> Response:
        self.authorize("compute:flavors:delete")
        flavors.delete_flavor(flavors.get_flavor(self.ctx, flavor_id))
        return Response(status=202)
