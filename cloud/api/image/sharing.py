"""Glance v2 image members and tags over HTTP (cloud.images.members, cloud.images.images)."""

from __future__ import annotations

from datetime import datetime

from rest_framework.request import Request
from rest_framework.response import Response

from cloud.images import images as image_records
from cloud.images import members
from cloud.images.models import MEMBER_STATUSES, ImageMember

from .views import GlanceView

_MEMBER_CREATE = {
    "type": "object",
    "required": ["member"],
    "properties": {"member": {"type": "string", "minLength": 1, "maxLength": 255}},
}
_MEMBER_UPDATE = {
    "type": "object",
    "required": ["status"],
    "properties": {"status": {"type": "string"}},
}


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def member_body(member: ImageMember) -> dict:
    return {
        "image_id": str(member.image_id),
        "member_id": member.project_id,
        "status": member.status,
        "created_at": _iso(member.created_at),
        "updated_at": _iso(member.updated_at),
        "schema": "/v2/schemas/member",
    }


class ImageMembers(GlanceView):
    body_schemas = {"POST": _MEMBER_CREATE}

    def get(self, request: Request, image_id: str) -> Response:
        found = members.list_members(self.ctx, image_id)
        return Response(
            {"members": [member_body(m) for m in found], "schema": "/v2/schemas/members"}
        )

    def post(self, request: Request, image_id: str) -> Response:
        body = self.valid_body()
        return Response(member_body(members.add_member(self.ctx, image_id, body["member"])))


class ImageMemberDetail(GlanceView):
    body_schemas = {"PUT": _MEMBER_UPDATE}

    def get(self, request: Request, image_id: str, member_id: str) -> Response:
        return Response(member_body(members.get_member(self.ctx, image_id, member_id)))

    def put(self, request: Request, image_id: str, member_id: str) -> Response:
        status = self.valid_body()["status"]
        return Response(
            member_body(members.update_member(self.ctx, image_id, member_id, status))
        )

    def delete(self, request: Request, image_id: str, member_id: str) -> Response:
        members.delete_member(self.ctx, image_id, member_id)
        return Response(status=204)


class ImageTag(GlanceView):
    def put(self, request: Request, image_id: str, tag: str) -> Response:
        image_records.add_tag(self.ctx, image_id, tag)
        return Response(status=204)

    def delete(self, request: Request, image_id: str, tag: str) -> Response:
        image_records.remove_tag(self.ctx, image_id, tag)
        return Response(status=204)


_TIMESTAMP = {"type": "string", "format": "date-time", "readOnly": True}
MEMBER_PROPERTIES: dict = {
    "image_id": {"type": "string", "readOnly": True},
    "member_id": {"type": "string", "readOnly": True},
    "status": {"type": "string", "enum": MEMBER_STATUSES},
    "created_at": _TIMESTAMP,
    "updated_at": _TIMESTAMP,
    "schema": {"type": "string", "readOnly": True},
}


def member_schema() -> dict:
    return {"name": "member", "properties": MEMBER_PROPERTIES}


class MemberSchema(GlanceView):
    def get(self, request: Request) -> Response:
        return Response(member_schema())


class MembersSchema(GlanceView):
    def get(self, request: Request) -> Response:
        return Response(
            {
                "name": "members",
                "properties": {
                    "members": {"type": "array", "items": member_schema()},
                    "schema": {"type": "string"},
                },
                "links": [{"rel": "describedby", "href": "{schema}"}],
            }
        )
