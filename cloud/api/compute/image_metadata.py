"""/images/{id}/metadata[/{key}]: Nova's proxy of an image's properties, until 2.38 (404 from 2.39,
as Nova). Changes go through the image service's own patch (cloud/images/images.py), so Glance's
rules (owner only, reserved keys) hold here too; a key that names a core attribute is refused."""

from __future__ import annotations

from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response

from cloud import errors
from cloud.images import images
from cloud.images.models import Image

from ..base import ComputeView

SHOW = "compute:image_metadata:show"
CHANGE = "compute:image_metadata:change"
_KEY = {"type": "string", "minLength": 1, "maxLength": 255}
_VALUE = {"type": "string", "maxLength": 255}
_METADATA = {
    "type": "object",
    "required": ["metadata"],
    "properties": {"metadata": {"type": "object", "propertyNames": _KEY,
                                "additionalProperties": _VALUE}},
    "additionalProperties": False,
}
_META = {
    "type": "object",
    "required": ["meta"],
    "properties": {"meta": {"type": "object", "propertyNames": _KEY,
                            "additionalProperties": _VALUE, "minProperties": 1,
                            "maxProperties": 1}},
    "additionalProperties": False,
}


def _metadata(image: Image) -> dict[str, str]:
    return {k: str(v) for k, v in image.properties.items()}


class _MetadataView(ComputeView):
    def initial(self, request: Request, *args, **kwargs) -> None:
        super().initial(request, *args, **kwargs)
        if self.version.at_least("2.39"):
            raise errors.NotFound("The resource could not be found.")

    def change(self, image_id: str, values: dict[str, str], removed: set[str]) -> Image:
        self.authorize(CHANGE)
        core = set(values) & images.CORE
        if core:
            raise errors.BadRequest(f"Image metadata cannot name a core attribute: "
                                    f"{', '.join(sorted(core))}.")
        ops = [{"op": "add", "path": "/" + k.replace("~", "~0").replace("/", "~1"), "value": v}
               for k, v in values.items()]
        ops += [{"op": "remove", "path": "/" + k.replace("~", "~0").replace("/", "~1")}
                for k in sorted(removed)]
        return images.update_image(self.ctx, image_id, ops)


class ImageMetadata(_MetadataView):
    body_schemas = {"POST": _METADATA, "PUT": _METADATA}

    def get(self, request: Request, image_id: str) -> Response:
        image = images.get_image(self.ctx, image_id)
        self.authorize(SHOW)
        return Response({"metadata": _metadata(image)})

    def post(self, request: Request, image_id: str) -> Response:
        images.get_image(self.ctx, image_id)
        self.authorize(CHANGE)
        image = self.change(image_id, self.valid_body("metadata"), set())
        return Response({"metadata": _metadata(image)})

    def put(self, request: Request, image_id: str) -> Response:
        current = images.get_image(self.ctx, image_id)
        self.authorize(CHANGE)
        values = self.valid_body("metadata")
        image = self.change(image_id, values, set(current.properties) - set(values))
        return Response({"metadata": _metadata(image)})


class ImageMetadataItem(_MetadataView):
    body_schemas = {"PUT": _META}

    def get(self, request: Request, image_id: str, key: str) -> Response:
        metadata = _metadata(images.get_image(self.ctx, image_id))
        self.authorize(SHOW)
        if key not in metadata:
            raise errors.NotFound("Invalid metadata key")
        return Response({"meta": {key: metadata[key]}})

    def put(self, request: Request, image_id: str, key: str) -> Response:
        images.get_image(self.ctx, image_id)
        self.authorize(CHANGE)
        meta = self.valid_body("meta")
        if key not in meta:
            raise errors.BadRequest("Request body and URI mismatch")
        image = self.change(image_id, meta, set())
        return Response({"meta": {key: _metadata(image)[key]}})

    def delete(self, request: Request, image_id: str, key: str) -> Response:
        image = images.get_image(self.ctx, image_id)
        self.authorize(CHANGE)
        if key not in image.properties:
            raise errors.NotFound(f"Invalid metadata key: {key}")
        self.change(image_id, {}, {key})
        return Response(status=204)


urlpatterns = [
    path("/images/<str:image_id>/metadata", ImageMetadata.as_view()),
    path("/images/<str:image_id>/metadata/<str:key>", ImageMetadataItem.as_view()),
]
