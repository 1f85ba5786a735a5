"""/images: Nova's proxy of the image API, which clients use below microversion 2.36 (Tempest's
snapshot tests at 2.1 wait on it). Read and delete only, as Nova's proxy is today."""

from __future__ import annotations

from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response

from cloud import errors
from cloud.images import images
from cloud.images.models import Image

from ..base import ComputeView
from . import bodies, params

# Glance's statuses, as Nova's proxy shows them.
_STATUS = {"queued": "SAVING", "saving": "SAVING", "active": "ACTIVE", "killed": "ERROR",
           "deleted": "DELETED", "pending_delete": "DELETED", "deactivated": "ERROR"}
_PROGRESS = {"queued": 25, "saving": 50, "active": 100}


def image_body(image: Image, url, detail: bool = True) -> dict:
    image_id = str(image.id)
    body = {"id": image_id, "name": image.name, "links": bodies.links(url, "images", image_id)}
    if not detail:
        return body
    body.update({
        "status": _STATUS.get(image.status, "UNKNOWN"),
        "progress": _PROGRESS.get(image.status, 0),
        "created": bodies.iso(image.created_at),
        "updated": bodies.iso(image.updated_at),
        "minDisk": image.min_disk,
        "minRam": image.min_ram,
        "metadata": {k: str(v) for k, v in image.properties.items()},
        "OS-EXT-IMG-SIZE:size": image.size,
    })
    server = image.properties.get("instance_uuid")
    if server:
        body["server"] = {"id": server, "links": bodies.links(url, "servers", server)}
    return body


class ImageProxyView(ComputeView):
    def initial(self, request: Request, *args, **kwargs) -> None:
        super().initial(request, *args, **kwargs)
        if self.version.at_least("2.36"):
            raise errors.NotFound("The image proxy API is gone from microversion 2.36.")


class ImageList(ImageProxyView):
    detail = False
    query_params = {"GET": ("limit", "marker", "name")}

    def get(self, request: Request) -> Response:
        query = {k: v for k, v in request.query_params.items() if k in ("limit", "marker", "name")}
        limit = params.limit_param(request.query_params)
        page = images.list_images(self.ctx, query)
        found = [image_body(i, self.compute_url, self.detail) for i in page.images]
        body = {"images": found}
        links = params.next_link(self.compute_url("images/detail" if self.detail else "images"),
                                 page.images, limit, lambda i: i.id)
        if links:
            body["images_links"] = links
        return Response(body)


class ImageDetailList(ImageList):
    detail = True


class ImageItem(ImageProxyView):
    def get(self, request: Request, image_id: str) -> Response:
        return Response({"image": image_body(images.get_image(self.ctx, image_id), self.compute_url)})

    def delete(self, request: Request, image_id: str) -> Response:
        images.delete_image(self.ctx, image_id)
        return Response(status=204)


urlpatterns = [
    path("/images", ImageList.as_view()),
    path("/images/detail", ImageDetailList.as_view()),
    path("/images/<str:image_id>", ImageItem.as_view()),
]
