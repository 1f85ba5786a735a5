"""/flavors/{id}/os-extra_specs: anyone may read a flavor's extra specs; admins change them. From
2.86 the values of the extra specs Kumo knows are validated (cloud/compute/extra_spec_rules.py)."""

from __future__ import annotations

from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response

from cloud import errors
from cloud.compute import extra_spec_rules, flavors

from ..base import ComputeView

_KEY = r"^[a-zA-Z0-9-_:. ]{1,255}$"
_SPECS = {
    "type": "object",
    "patternProperties": {_KEY: {"type": "string", "maxLength": 255}},
    "additionalProperties": False,
}
_CREATE = {
    "type": "object",
    "required": ["extra_specs"],
    "properties": {"extra_specs": {**_SPECS, "minProperties": 1}},
    "additionalProperties": False,
}
_ITEM = {**_SPECS, "minProperties": 1, "maxProperties": 1}


class ExtraSpecs(ComputeView):
    body_schemas = {"POST": _CREATE}

    def get(self, request: Request, flavor_id: str) -> Response:
        self.authorize("compute:flavor_extra_specs:index")
        flavor = flavors.get_flavor(self.ctx, flavor_id)
        return Response({"extra_specs": flavor.extra_specs})

    def post(self, request: Request, flavor_id: str) -> Response:
        self.authorize("compute:flavor_extra_specs:create")
        specs = self.valid_body("extra_specs")
        if self.version.at_least("2.86"):
            extra_spec_rules.check(specs)
        specs = flavors.set_extra_specs(flavors.get_flavor(self.ctx, flavor_id), specs)
        return Response({"extra_specs": specs})


class ExtraSpec(ComputeView):
    body_schemas = {"PUT": _ITEM}

    def get(self, request: Request, flavor_id: str, key: str) -> Response:
        self.authorize("compute:flavor_extra_specs:show")
        flavor = flavors.get_flavor(self.ctx, flavor_id)
        return Response({key: flavors.get_extra_spec(flavor, key)})

    def put(self, request: Request, flavor_id: str, key: str) -> Response:
        self.authorize("compute:flavor_extra_specs:update")
        body = self.valid_body()
        if key not in body:
            raise errors.BadRequest("The request body's key must be the one in the URL.")
        if self.version.at_least("2.86"):
            extra_spec_rules.check(body)
        flavors.set_extra_specs(flavors.get_flavor(self.ctx, flavor_id), {key: body[key]})
        return Response({key: body[key]})

    def delete(self, request: Request, flavor_id: str, key: str) -> Response:
        self.authorize("compute:flavor_extra_specs:delete")
        flavors.delete_extra_spec(flavors.get_flavor(self.ctx, flavor_id), key)
        return Response(status=200)


urlpatterns = [
    path("/flavors/<str:flavor_id>/os-extra_specs", ExtraSpecs.as_view()),
    path("/flavors/<str:flavor_id>/os-extra_specs/<str:key>", ExtraSpec.as_view()),
]
