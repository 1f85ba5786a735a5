"""/servers/{id}/tags (2.26+; missing below it, as in Nova): list, replace all, delete all; and
/servers/{id}/tags/{tag}: check (204 or 404), add (201 new, 204 already there), delete."""

from __future__ import annotations

from urllib.parse import quote

from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response

from cloud import errors
from cloud.compute import server_tags
from cloud.compute.models import Instance

from ..base import ComputeView

TAG_SCHEMA = {
    "type": "string",
    "minLength": 1,
    "maxLength": server_tags.MAX_TAG_LENGTH,
    "pattern": "^[^,/]*$",
}
TAGS_SCHEMA = {"type": "array", "items": TAG_SCHEMA, "maxItems": server_tags.MAX_TAGS}
_REPLACE = {
    "type": "object",
    "required": ["tags"],
    "properties": {"tags": TAGS_SCHEMA},
    "additionalProperties": False,
}


class _TagsView(ComputeView):
    def server(self, server_id: str, rule: str) -> Instance:
        self.require_version("2.26")
        return self.authorized_server(server_id, rule)


class ServerTagList(_TagsView):
    body_schemas = {"PUT": _REPLACE}

    def get(self, request: Request, server_id: str) -> Response:
        instance = self.server(server_id, "compute:server_tags:index")
        return Response({"tags": server_tags.tags_of(instance)})

    def put(self, request: Request, server_id: str) -> Response:
        instance = self.server(server_id, "compute:server_tags:update_all")
        tags = self.valid_body("tags")
        return Response({"tags": server_tags.replace_tags(instance, tags)})

    def delete(self, request: Request, server_id: str) -> Response:
        instance = self.server(server_id, "compute:server_tags:delete_all")
        server_tags.remove_all_tags(instance)
        return Response(status=204)


class ServerTagItem(_TagsView):
    def get(self, request: Request, server_id: str, tag: str) -> Response:
        instance = self.server(server_id, "compute:server_tags:show")
        if not server_tags.has_tag(instance, tag):
            raise errors.NotFound(f"Server {instance.uuid} has no tag '{tag}'")
        return Response(status=204)

    def put(self, request: Request, server_id: str, tag: str) -> Response:
        instance = self.server(server_id, "compute:server_tags:update")
        if not server_tags.add_tag(instance, tag):
            return Response(status=204)
        response = Response(status=201)
        response["Location"] = self.compute_url("servers", str(instance.uuid), "tags", quote(tag, safe=""))
        return response

    def delete(self, request: Request, server_id: str, tag: str) -> Response:
        instance = self.server(server_id, "compute:server_tags:delete")
        server_tags.remove_tag(instance, tag)
        return Response(status=204)


urlpatterns = [
    path("/servers/<str:server_id>/tags", ServerTagList.as_view()),
    path("/servers/<str:server_id>/tags/<str:tag>", ServerTagItem.as_view()),
]
