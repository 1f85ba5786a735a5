"""/servers/{id}/os-volume_attachments: a server's volumes (cloud/compute/server_volumes.py), in
Nova's shapes per version: 2.49 a tag on attach, 2.70 the tag shown, 2.79 delete_on_termination
(on attach and shown), 2.85 delete_on_termination changed by PUT, 2.89 attachment_id and bdm_uuid
shown instead of the id. Swapping a volume for another is not done here (409)."""

from __future__ import annotations

import copy

from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response

from cloud import errors
from cloud.compute import operations, server_volumes
from cloud.compute.models import BlockDeviceMapping

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


SWAP_UNSUPPORTED = "Swapping one volume for another is not supported by this cloud."


class _Shapes(ComputeView):
    def shown(self, mapping: BlockDeviceMapping, *, created: bool = False) -> dict:
        view = server_volumes.api_view(mapping)
        body = {"device": view["device"], "id": view["id"], "serverId": view["serverId"],
                "volumeId": view["volumeId"]}
        if self.version.at_least("2.70"):
            body["tag"] = view["tag"]
        if self.version.at_least("2.79"):
            body["delete_on_termination"] = view["delete_on_termination"]
        if self.version.at_least("2.89") and not created:
            del body["id"]
            body["attachment_id"] = view["attachment_id"]
            body["bdm_uuid"] = view["bdm_uuid"]
        return body


class VolumeAttachmentList(_Shapes):
    body_schemas = {"POST": Versioned(("2.1", _ATTACH_21), ("2.49", _ATTACH_249),
                                      ("2.79", _ATTACH_279))}
    query_params = {"GET": ("limit", "offset")}

    def get(self, request: Request, server_id: str) -> Response:
        instance = self.authorized_server(server_id, "compute:volume_attachments:index")
        limit = params.limit_param(request.query_params)
        offset = params.count_param(request.query_params, "offset") or 0
        mappings = [m for m in server_volumes.mappings_of(instance) if m.volume_id]
        page = mappings[offset:offset + limit] if limit is not None else mappings[offset:]
        return Response({"volumeAttachments": [self.shown(m) for m in page]})

    def post(self, request: Request, server_id: str) -> Response:
        instance = self.authorized_server(server_id, "compute:volume_attachments:create")
        wanted = self.valid_body("volumeAttachment")
        mapping = operations.perform(
            self.ctx, instance, "attach_volume", volume_id=wanted["volumeId"],
            tag=wanted.get("tag"),
            delete_on_termination=bool(wanted.get("delete_on_termination", False)))
        return Response({"volumeAttachment": self.shown(mapping, created=True)})


class VolumeAttachmentItem(_Shapes):
    body_schemas = {"PUT": Versioned(("2.1", _UPDATE_21), ("2.85", _UPDATE_285))}

    def get(self, request: Request, server_id: str, volume_id: str) -> Response:
        instance = self.authorized_server(server_id, "compute:volume_attachments:show")
        mapping = server_volumes.mapping_for(instance, volume_id)
        return Response({"volumeAttachment": self.shown(mapping)})

    def put(self, request: Request, server_id: str, volume_id: str) -> Response:
        instance = self.authorized_server(server_id, "compute:volume_attachments:update")
        wanted = self.valid_body("volumeAttachment")
        mapping = server_volumes.mapping_for(instance, volume_id)
        if str(wanted["volumeId"]).lower() != str(mapping.volume_id):
            raise errors.Conflict(SWAP_UNSUPPORTED)
        if "delete_on_termination" not in wanted:
            # Before 2.85 an update is a swap; naming the same volume swaps nothing (Nova's 400).
            raise errors.BadRequest(f"The volume {volume_id} is already attached; nothing to "
                                    "swap or change.")
        server_volumes.set_delete_on_termination(
            self.ctx, instance, volume_id, bool(wanted["delete_on_termination"]))
        return Response(status=202)

    def delete(self, request: Request, server_id: str, volume_id: str) -> Response:
        instance = self.authorized_server(server_id, "compute:volume_attachments:delete")
        operations.perform(self.ctx, instance, "detach_volume", volume_id=volume_id)
        return Response(status=202)


urlpatterns = [
    path("/servers/<str:server_id>/os-volume_attachments", VolumeAttachmentList.as_view()),
    path("/servers/<str:server_id>/os-volume_attachments/<str:volume_id>",
         VolumeAttachmentItem.as_view()),
]
