"""Cinder's attachments API (3.27+), the one Nova uses: reserve a volume for a server, give the
attaching host the volume's connection, mark it attached (os-complete, 3.44), and delete it. The
steps are cloud/volumes/attachments.py's, shared with the compute side's attach and detach."""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.response import Response

from cloud import errors
from cloud.volumes import attachments, common
from cloud.volumes.models import VolumeAttachment

from .base import VolumeView
from .bodies import iso
from .views import _object


def attachment_body(attachment: VolumeAttachment, *, detail: bool = True,
                    connection: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": str(attachment.pk),
        "status": attachment.status,
        "instance": str(attachment.instance_uuid) if attachment.instance_uuid else None,
        "volume_id": str(attachment.volume_id),
    }
    if detail:
        body.update({
            "attached_at": iso(attachment.attach_time),
            "detached_at": None,
            "attach_mode": attachment.attach_mode,
            "connection_info": connection,
        })
    return body


def _connection(attachment: VolumeAttachment) -> dict[str, Any] | None:
    # Only once a connector was given (the host is known) does the caller get the connection.
    if not attachment.connector and attachment.status == "reserved":
        return None
    return {**attachment.volume.connection, "attachment_id": str(attachment.pk)}


class Attachments(VolumeView):
    body_schemas = {"POST": _object("attachment")}
    query_params = {"GET": ("all_tenants", "volume_id", "instance_id", "status", "limit",
                            "marker", "sort")}
    detail = False

    def get(self, request: Request, project_id: str) -> Response:
        self.require_version("3.27")
        common.authorize(self.ctx, "volume:attachments:read")
        rows = VolumeAttachment.objects.select_related("volume")
        all_tenants = (self.ctx.is_admin and
                       common.as_bool(request.query_params.get("all_tenants") or "0",
                                      "all_tenants"))
        if not all_tenants:
            rows = rows.filter(volume__project_id=self.ctx.project_id)
        for param, field in (("volume_id", "volume_id"), ("instance_id", "instance_uuid"),
                             ("status", "status")):
            value = request.query_params.get(param)
            if value:
                rows = rows.filter(**{field: common.parse_uuid(value) if field != "status"
                                      else value})
        return Response({"attachments": [
            attachment_body(a, detail=self.detail, connection=_connection(a) if self.detail
                            else None) for a in rows]})

    def post(self, request: Request, project_id: str) -> Response:
        self.require_version("3.27")
        body = self.valid_body("attachment")
        volume = common.get_volume(self.ctx, body.get("volume_uuid") or body.get("volume_id"),
                                   action="volume:attachments:write")
        instance = body.get("instance_uuid")
        if not instance or common.parse_uuid(str(instance)) is None:
            raise errors.BadRequest("Invalid input received: instance_uuid must be a UUID.")
        mode = body.get("mode") or "rw"
        if mode not in ("rw", "ro"):
            raise errors.BadRequest(f"Invalid input received: Invalid attachment mode: {mode}.")
        attachment = attachments.reserve(volume.pk, str(instance), attach_mode=mode)
        connection = None
        connector = body.get("connector")
        if connector:
            if not isinstance(connector, dict):
                raise errors.BadRequest("Invalid input received: connector must be an object.")
            attachments.begin_attach(attachment.pk, host=str(connector.get("host") or ""),
                                     mountpoint=str(connector.get("mountpoint") or ""),
                                     connector=connector)
            attachment.refresh_from_db()
            connection = _connection(attachment)
        return Response({"attachment": attachment_body(attachment, connection=connection)})


class AttachmentsDetail(Attachments):
    detail = True
    http_method_names = ["get", "head", "options"]


class AttachmentDetail(VolumeView):
    body_schemas = {"PUT": _object("attachment")}

    def get(self, request: Request, project_id: str, attachment_id: str) -> Response:
        self.require_version("3.27")
        attachment = common.get_attachment(self.ctx, attachment_id,
                                           action="volume:attachments:read")
        return Response({"attachment": attachment_body(attachment,
                                                       connection=_connection(attachment))})

    def put(self, request: Request, project_id: str, attachment_id: str) -> Response:
        """Nova's attachment update: the connector of the host that will attach it."""
        self.require_version("3.27")
        attachment = common.get_attachment(self.ctx, attachment_id,
                                           action="volume:attachments:write")
        connector = self.valid_body("attachment").get("connector")
        if not isinstance(connector, dict) or not connector:
            raise errors.BadRequest("Invalid input received: connector is required.")
        attachments.begin_attach(attachment.pk, host=str(connector.get("host") or ""),
                                 mountpoint=str(connector.get("mountpoint") or ""),
                                 connector=connector)
        attachment.refresh_from_db()
        return Response({"attachment": attachment_body(attachment,
                                                       connection=_connection(attachment))})

    def delete(self, request: Request, project_id: str, attachment_id: str) -> Response:
        self.require_version("3.27")
        attachment = common.get_attachment(self.ctx, attachment_id,
                                           action="volume:attachments:write")
        attachments.remove(attachment.pk)
        return Response({"attachments": []})


class AttachmentAction(VolumeView):
    body_schemas = {"POST": {"type": "object", "minProperties": 1, "maxProperties": 1}}

    def post(self, request: Request, project_id: str, attachment_id: str) -> Response:
        self.require_version("3.44")
        attachment = common.get_attachment(self.ctx, attachment_id,
                                           action="volume:attachments:write")
        [action] = list(self.valid_body())
        if action != "os-complete":
            raise errors.BadRequest(f"There is no such action: {action}")
        attachments.complete(attachment.pk)
        return Response(status=204)
