"""Glance v2 subset over HTTP. Bodies follow Glance: `self`, `file` and `schema` links are paths
relative to the image endpoint ("/v2/…"), which is what the clients join them with."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from django.http import FileResponse, HttpResponse
from rest_framework.request import Request
from rest_framework.response import Response

from cloud import errors
from cloud.api import error_bodies
from cloud.api.base import ImageView, PublicView
from cloud.images import images as image_records
from cloud.images.models import CONTAINER_FORMATS, DISK_FORMATS, VISIBILITIES, Image

CHUNK_SIZE = 1024 * 1024
CURRENT_MINOR = 16
_OCTET_STREAM = "application/octet-stream"
# PATCH media types → the JSON Schema draft of their dialect (cloud.images.images.PATCH_DRAFTS).
PATCH_MEDIA_TYPES = {
    "application/openstack-images-v2.0-json-patch": 4,
    "application/openstack-images-v2.1-json-patch": 10,
}


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def image_body(image: Image) -> dict:
    path = f"/v2/images/{image.id}"
    body = {
        "id": str(image.id),
        "name": image.name,
        "status": image.status,
        "disk_format": image.disk_format,
        "container_format": image.container_format,
        "visibility": image.visibility,
        "size": image.size,
        "virtual_size": image.virtual_size,
        "checksum": image.checksum,
        "os_hash_algo": image.os_hash_algo,
        "os_hash_value": image.os_hash_value,
        "min_disk": image.min_disk,
        "min_ram": image.min_ram,
        "protected": image.protected,
        "os_hidden": image.os_hidden,
        "owner": image.owner_id,
        "tags": list(image.tags),
        "created_at": _iso(image.created_at),
        "updated_at": _iso(image.updated_at),
        "self": path,
        "file": f"{path}/file",
        "schema": "/v2/schemas/image",
    }
    # Extra properties never shadow the core attributes (create and patch refuse those keys).
    return {**image.properties, **body}


class _AnyAccept:
    """Glance answers JSON or raw bytes whatever Accept says; the SDK sends
    `Accept: application/octet-stream` on uploads, which DRF would refuse with 406."""

    def perform_content_negotiation(self, request: Request, force: bool = False) -> tuple:
        # A mixin: the DRF view after it in the MRO has the method.
        return super().perform_content_negotiation(request, force=True)  # type: ignore[misc]


class GlanceView(_AnyAccept, ImageView):
    pass


class ImagePublicView(_AnyAccept, PublicView):
    family = error_bodies.IMAGE

    def versions(self) -> list[dict]:
        href = f"{self.base_url()}/image/v2/"
        return [
            {
                "id": f"v2.{minor}",
                "status": "CURRENT" if minor == CURRENT_MINOR else "SUPPORTED",
                "links": [{"rel": "self", "href": href}],
            }
            for minor in range(CURRENT_MINOR, -1, -1)
        ]


class ImageRoot(ImagePublicView):
    def get(self, request: Request) -> Response:
        return Response({"versions": self.versions()}, status=300)


class ImageV2Root(ImagePublicView):
    # keystoneauth reads a version list from any 2xx or 300; 200 here because the URL names one.
    def get(self, request: Request) -> Response:
        return Response({"versions": self.versions()})


class Images(GlanceView):
    def get(self, request: Request) -> Response:
        query = request.query_params
        params = {key: query.get(key) for key in query}
        multi = {key: query.getlist(key) for key in ("sort_key", "sort_dir")}
        page = image_records.list_images(self.ctx, params, tags=query.getlist("tag"), multi=multi)
        body = {
            "images": [image_body(image) for image in page.images],
            "first": "/v2/images",
            "schema": "/v2/schemas/images",
        }
        if page.next_marker:
            # Every value of every parameter, repeated ones (tag, sort_key) included.
            following = [(k, v) for k, values in query.lists() if k not in ("marker", "limit")
                         for v in values]
            following += [("marker", page.next_marker), ("limit", str(page.limit))]
            body["next"] = f"/v2/images?{urlencode(following)}"
        return Response(body)

    def post(self, request: Request) -> Response:
        image = image_records.create_image(self.ctx, self.body())
        return Response(image_body(image), status=201)


class ImageDetail(GlanceView):
    def get(self, request: Request, image_id: str) -> Response:
        return Response(image_body(image_records.get_image(self.ctx, image_id)))

    def patch(self, request: Request, image_id: str) -> Response:
        media_type = request.content_type.split(";")[0].strip().lower()
        if media_type not in PATCH_MEDIA_TYPES:
            allowed = ", ".join(sorted(PATCH_MEDIA_TYPES))
            return Response(
                error_bodies.error_body(
                    self.family, 415, f"Image PATCH expects Content-Type one of: {allowed}"
                ),
                status=415,
                headers={"Accept-Patch": allowed},
            )
        draft = PATCH_MEDIA_TYPES[media_type]
        image = image_records.update_image(self.ctx, image_id, request.data, draft=draft)
        return Response(image_body(image))

    def delete(self, request: Request, image_id: str) -> Response:
        image_records.delete_image(self.ctx, image_id)
        return Response(status=204)


def _chunks(stream: Any) -> Iterator[bytes]:
    # Read in chunks: a multi-gigabyte upload never sits in memory.
    if stream is None:
        return
    while chunk := stream.read(CHUNK_SIZE):
        yield chunk


def upload_body(request: Request) -> tuple[Iterator[bytes], int | None]:
    """The request body as chunks, and its declared length (None when it was sent chunked).

    Django and DRF know a body's length from Content-Length only. Without one, Django wraps the
    input in a stream of 0 bytes and DRF's request.stream is None, so a chunked body — what
    python-glanceclient, Tempest and every streaming client send — used to read as empty, and
    the image went active with size 0. The server has already undone the chunked framing:
    uvicorn (cloud/asgi.py hands its body to the WSGI app through a2wsgi, whose wsgi.input ends
    where the body ends, and raises if the client goes away first), and gunicorn's own workers
    alike. So a chunked body is read from wsgi.input itself; having no length to check up front,
    it is capped while it streams (cloud.images.uploads). A request with neither header has no
    body, per HTTP/1.1."""
    meta = request.META
    if "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower():
        return _chunks(meta["wsgi.input"]), None
    length = meta.get("CONTENT_LENGTH")
    content_length = int(length) if length and length.isdigit() else None
    # request.stream is the WSGI input limited to Content-Length (None for an empty body).
    return _chunks(request.stream), content_length


class ImageFile(GlanceView):
    def put(self, request: Request, image_id: str) -> Response:
        content_type = request.content_type.split(";")[0].strip()
        if content_type and content_type != _OCTET_STREAM:
            raise errors.UnsupportedMedia(f"Image data must be sent as {_OCTET_STREAM}.")
        chunks, content_length = upload_body(request)
        image_records.upload_image(self.ctx, image_id, chunks, content_length)
        return Response(status=204)

    def get(self, request: Request, image_id: str) -> HttpResponse:
        image, data = image_records.open_image_data(self.ctx, image_id)
        if data is None:
            return HttpResponse(status=204)
        response = FileResponse(data, content_type=_OCTET_STREAM)
        # FileResponse names the file after its path on our disk; a client has no use for that.
        del response["Content-Disposition"]
        if image.checksum:
            # Hex, not RFC 1864 base64: that is what Glance sends and the clients compare.
            response["Content-MD5"] = image.checksum
        return response


class ImageDeactivate(GlanceView):
    def post(self, request: Request, image_id: str) -> Response:
        image_records.deactivate_image(self.ctx, image_id)
        return Response(status=204)


class ImageReactivate(GlanceView):
    def post(self, request: Request, image_id: str) -> Response:
        image_records.reactivate_image(self.ctx, image_id)
        return Response(status=204)


def _nullable(kind: str, **extra) -> dict:
    return {"type": [kind, "null"], **extra}


IMAGE_PROPERTIES: dict = {
    "id": {
        "type": "string",
        "description": "An identifier for the image",
        "pattern": "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}"
        "-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$",
    },
    "name": _nullable("string", maxLength=255),
    "status": {
        "type": "string",
        "readOnly": True,
        "enum": [
            "queued",
            "saving",
            "active",
            "killed",
            "deleted",
            "uploading",
            "importing",
            "pending_delete",
            "deactivated",
        ],
    },
    "visibility": {"type": "string", "enum": VISIBILITIES},
    "protected": {"type": "boolean"},
    "os_hidden": {"type": "boolean"},
    "checksum": _nullable("string", maxLength=32, readOnly=True),
    "os_hash_algo": _nullable("string", maxLength=64, readOnly=True),
    "os_hash_value": _nullable("string", maxLength=128, readOnly=True),
    "owner": _nullable("string", maxLength=255),
    "size": _nullable("integer", readOnly=True),
    "virtual_size": _nullable("integer", readOnly=True),
    "container_format": {"type": ["null", "string"], "enum": [None, *CONTAINER_FORMATS]},
    "disk_format": {"type": ["null", "string"], "enum": [None, *DISK_FORMATS]},
    "created_at": {"type": "string", "readOnly": True, "format": "date-time"},
    "updated_at": {"type": "string", "readOnly": True, "format": "date-time"},
    "tags": {"type": "array", "items": {"type": "string", "maxLength": 255}},
    "min_ram": {"type": "integer"},
    "min_disk": {"type": "integer"},
    "self": {"type": "string", "readOnly": True},
    "file": {"type": "string", "readOnly": True},
    "schema": {"type": "string", "readOnly": True},
}
IMAGE_LINKS = [
    {"rel": "self", "href": "{self}"},
    {"rel": "enclosure", "href": "{file}"},
    {"rel": "describedby", "href": "{schema}"},
]


def image_schema() -> dict:
    return {
        "name": "image",
        "properties": IMAGE_PROPERTIES,
        "additionalProperties": {"type": "string"},
        "links": IMAGE_LINKS,
    }


class ImageSchema(GlanceView):
    def get(self, request: Request) -> Response:
        return Response(image_schema())


class ImagesSchema(GlanceView):
    def get(self, request: Request) -> Response:
        return Response(
            {
                "name": "images",
                "properties": {
                    "images": {"type": "array", "items": image_schema()},
                    "schema": {"type": "string"},
                    "first": {"type": "string"},
                    "next": {"type": "string"},
                },
                "links": [
                    {"rel": "first", "href": "{first}"},
                    {"rel": "next", "href": "{next}"},
                    {"rel": "describedby", "href": "{schema}"},
                ],
            }
        )
