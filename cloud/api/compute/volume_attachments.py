"""/servers/{id}/os-volume_attachments: a server's volumes. This cloud has no volume service, so no
server has one: the list is empty, and any volume named is not found (404), as Nova answers for a
volume the volume service does not know. The body is still validated for the version (2.49 tag,
2.79 delete_on_termination, 2.85 delete_on_termination on update)."""

from __future__ import annotations

import copy

from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response

from cloud import errors

from ..base import ComputeView, Versioned
from . import params
from .server_schemas import BOOLEAN, DEVICE_TAG, UUID

_ATTACH_21 = {
    "type": "object",
    "required": ["volumeAttachment"],
    "properties": {"volumeAttachment": {
        "type": "object",
        "required": ["volumeId"],
        "properties": {"volumeId": UUID,
                       "device": {"type": ["string", "null"],
                                  "pattern": "(^/dev/x{0,1}[a-z]{0,1}d{0,1})([a-z]+)[0-9]*$"}},
        "additionalProperties": False,
    }},
    "additionalProperties": False,
}


def _with(base: dict, **fields: dict) -> dict:
    schema = copy.deepcopy(base)
    schema["properties"]["volumeAttachment"]["properties"].update(fields)
    return schema


_ATTACH_249 = _with(_ATTACH_21, tag=DEVICE_TAG)
_ATTACH_279 = _with(_ATTACH_249, delete_on_termination=BOOLEAN)
_UPDATE_21 = _with(_ATTACH_21)
_UPDATE_285 = _with(_ATTACH_21, delete_on_termination=BOOLEAN)


def _no_volume(volume_id: str) -> errors.NotFound:
    return errors.NotFound(f"Volume {volume_id} could not be found.")


class VolumeAttachmentList(ComputeView):
    body_schemas = {"POST": Versioned(("2.1", _ATTACH_21), ("2.49", _ATTACH_249),
                                      ("2.79", _ATTACH_279))}
    query_params = {"GET": ("limit", "offset")}

    def get(self, request: Request, server_id: str) -> Response:
        self.authorized_server(server_id, "compute:volume_attachments:index")
        params.limit_param(request.query_params)  # a malformed page is still a 400
        params.count_param(request.query_params, "offset")
        return Response({"volumeAttachments": []})

    def post(self, request: Request, server_id: str) -> Response:
        self.authorized_server(server_id, "compute:volume_attachments:create")
        attachment = self.valid_body("volumeAttachment")
        raise _no_volume(attachment["volumeId"])


class VolumeAttachmentItem(ComputeView):
    body_schemas = {"PUT": Versioned(("2.1", _UPDATE_21), ("2.85", _UPDATE_285))}

    def get(self, request: Request, server_id: str, volume_id: str) -> Response:
        instance = self.authorized_server(server_id, "compute:volume_attachments:show")
        raise errors.NotFound(f"Instance {instance.uuid} is not attached to volume {volume_id}.")

    def put(self, request: Request, server_id: str, volume_id: str) -> Response:
        self.authorized_server(server_id, "compute:volume_attachments:update")
        self.valid_body("volumeAttachment")
        raise _no_volume(volume_id)

    def delete(self, request: Request, server_id: str, volume_id: str) -> Response:
        instance = self.authorized_server(server_id, "compute:volume_attachments:delete")
        raise errors.NotFound(f"Instance {instance.uuid} is not attached to volume {volume_id}.")


urlpatterns = [
    path("/servers/<str:server_id>/os-volume_attachments", VolumeAttachmentList.as_view()),
    path("/servers/<str:server_id>/os-volume_attachments/<str:volume_id>",
         VolumeAttachmentItem.as_view()),
]
