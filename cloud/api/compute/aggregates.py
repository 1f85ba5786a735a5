"""/os-aggregates (admins only): list, create, show, update, delete, and the host/metadata actions.

Create answers without `hosts` and `metadata` (Tempest's create schema forbids them); every other
answer has them. `uuid` appears from 2.41.
"""

from __future__ import annotations

from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response

from cloud import errors
from cloud.compute import aggregates
from cloud.compute.models import Aggregate
from cloud.images import images
from cloud.validation import name_schema, validate

from ..base import ComputeView
from ..microversion import APIVersion
from . import bodies
from .hosts import FeatureNotSupported

_ZONE = {
    "type": ["string", "null"],
    "minLength": 1,
    "maxLength": 255,
    # A colon would read as "zone:host" in a boot request.
    "pattern": r"^(?![\s])[^\x00-\x1f\x7f:]*(?<![\s])$",
}
_CREATE = {
    "type": "object",
    "required": ["aggregate"],
    "properties": {
        "aggregate": {
            "type": "object",
            "required": ["name"],
            "properties": {"name": name_schema(), "availability_zone": _ZONE},
            "additionalProperties": False,
        }
    },
    "additionalProperties": False,
}
_UPDATE = {
    "type": "object",
    "required": ["aggregate"],
    "properties": {
        "aggregate": {
            "type": "object",
            "properties": {"name": name_schema(), "availability_zone": _ZONE},
            "additionalProperties": False,
            "minProperties": 1,
        }
    },
    "additionalProperties": False,
}
_HOST = {
    "type": "object",
    "required": ["host"],
    "properties": {"host": {"type": "string", "minLength": 1, "maxLength": 255}},
    "additionalProperties": False,
}
_ACTION = {
    "type": "object",
    "minProperties": 1,
    "maxProperties": 1,
    "properties": {
        "add_host": _HOST,
        "remove_host": _HOST,
        "set_metadata": {
            "type": "object",
            "required": ["metadata"],
            "properties": {
                "metadata": {
                    "type": "object",
                    "patternProperties": {
                        "^[a-zA-Z0-9-_:. ]{1,255}$": {
                            "type": ["string", "null"],
                            "maxLength": 255,
                        }
                    },
                    "additionalProperties": False,
                }
            },
            "additionalProperties": False,
        },
    },
    "additionalProperties": False,
}
_ACTIONS = ("add_host", "remove_host", "set_metadata")
_METADATA_ZONE = {"type": "object", "properties": {aggregates.ZONE_KEY: _ZONE}}


def aggregate_body(aggregate: Aggregate, version: APIVersion, *, full: bool = True) -> dict:
    body = {
        "id": aggregate.pk,
        "name": aggregate.name,
        "availability_zone": aggregate.availability_zone,
        "created_at": bodies.iso_micro(aggregate.created_at),
        "updated_at": bodies.iso_micro(aggregate.updated_at),
        "deleted": False,
        "deleted_at": None,
    }
    if full:
        body["hosts"] = aggregates.host_names(aggregate)
        body["metadata"] = aggregates.metadata_of(aggregate)
    if version.at_least("2.41"):
        body["uuid"] = str(aggregate.uuid)
    return body


class AggregateList(ComputeView):
    body_schemas = {"POST": _CREATE}

    def get(self, request: Request) -> Response:
        self.authorize("compute:aggregates:index")
        found = aggregates.list_aggregates()
        return Response({"aggregates": [aggregate_body(a, self.version) for a in found]})

    def post(self, request: Request) -> Response:
        self.authorize("compute:aggregates:create")
        spec = self.valid_body("aggregate")
        aggregate = aggregates.create_aggregate(spec["name"], spec.get("availability_zone"))
        return Response({"aggregate": aggregate_body(aggregate, self.version, full=False)})


class AggregateItem(ComputeView):
    body_schemas = {"PUT": _UPDATE}

    def get(self, request: Request, aggregate_id: str) -> Response:
        self.authorize("compute:aggregates:show")
        aggregate = aggregates.get_aggregate(aggregate_id)
        return Response({"aggregate": aggregate_body(aggregate, self.version)})

    def put(self, request: Request, aggregate_id: str) -> Response:
        self.authorize("compute:aggregates:update")
        changes = self.valid_body("aggregate")
        aggregate = aggregates.update_aggregate(aggregates.get_aggregate(aggregate_id), **changes)
        return Response({"aggregate": aggregate_body(aggregate, self.version)})

    def delete(self, request: Request, aggregate_id: str) -> Response:
        self.authorize("compute:aggregates:delete")
        aggregates.delete_aggregate(aggregates.get_aggregate(aggregate_id))
        # Nova answers 200 with no body here, and Tempest checks the code.
        return Response(status=200)


class AggregateAction(ComputeView):
    body_schemas = {"POST": _ACTION}

    def post(self, request: Request, aggregate_id: str) -> Response:
        data = request.data
        action = next(iter(data), None) if isinstance(data, dict) else None
        if action not in _ACTIONS:
            # Only someone allowed to change aggregates learns that the action is malformed.
            self.authorize("compute:aggregates:update")
            raise errors.BadRequest(f"Unknown aggregate action: {action}")
        self.authorize(f"compute:aggregates:{action}")
        body = self.valid_body()
        aggregate = aggregates.get_aggregate(aggregate_id)
        if action == "add_host":
            aggregate = aggregates.add_host(aggregate, body[action]["host"])
        elif action == "remove_host":
            aggregate = aggregates.remove_host(aggregate, body[action]["host"])
        else:
            metadata = body[action]["metadata"]
            validate(_METADATA_ZONE, metadata)
            aggregate = aggregates.set_metadata(aggregate, metadata)
        return Response({"aggregate": aggregate_body(aggregate, self.version)})


_CACHE_IMAGES = {
    "type": "object",
    "required": ["cache"],
    "properties": {"cache": {
        "type": "array", "minItems": 1,
        "items": {"type": "object", "required": ["id"],
                  "properties": {"id": {"type": "string", "format": "uuid"}},
                  "additionalProperties": False},
    }},
    "additionalProperties": False,
}


class AggregateImages(ComputeView):
    """POST /os-aggregates/{id}/images (2.81): ask the aggregate's hosts to cache images ahead of
    boots. Kumo's hosts fetch an image on the first boot that needs it and keep it; they take no
    order to fetch one ahead, so the request is refused with Nova's 501 for a driver without it
    (after the aggregate and the images were checked)."""

    body_schemas = {"POST": _CACHE_IMAGES}

    def post(self, request: Request, aggregate_id: str) -> Response:
        self.require_version("2.81")
        self.authorize("compute:aggregates:images")
        aggregates.get_aggregate(aggregate_id)
        for entry in self.valid_body("cache"):
            try:
                images.get_image(self.ctx, entry["id"])
            except errors.NotFound:
                raise errors.BadRequest(f"Image {entry['id']} is not found.") from None
        raise FeatureNotSupported("Feature not supported: the compute hosts do not cache "
                                  "images ahead of a boot")


urlpatterns = [
    path("/os-aggregates", AggregateList.as_view()),
    path("/os-aggregates/<str:aggregate_id>/images", AggregateImages.as_view()),
    path("/os-aggregates/<str:aggregate_id>", AggregateItem.as_view()),
    path("/os-aggregates/<str:aggregate_id>/action", AggregateAction.as_view()),
]
