"""The volume and bare-metal APIs Nova proxied until 2.35 (404 from 2.36): os-volumes and
os-snapshots, the project's block-storage volumes and snapshots (cloud/volumes) in Nova's shapes
(camelCase keys, `attachments` as `[{}]` when the volume is attached nowhere, as Nova answers);
and os-baremetal-nodes, of which this cloud has none (admins). os-assisted-volume-snapshots
(admins, any version, for Nova's own use with file-based volume drivers) finds no volume."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response

from cloud import errors
from cloud.volumes import snapshots as snapshot_service
from cloud.volumes import volumes as volume_service
from cloud.volumes.models import Volume, VolumeSnapshot

from ..base import ComputeView
from . import params

_NO_VOLUMES = "This cloud has no volume service."


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def _volume(volume: Volume) -> dict[str, Any]:
    attachments = [{"id": str(volume.pk), "volumeId": str(volume.pk),
                    "serverId": str(a.instance_uuid), **({"device": a.mountpoint}
                                                        if a.mountpoint else {})}
                   for a in volume.attachments.all() if a.instance_uuid]
    return {
        "id": str(volume.pk),
        "status": volume.status,
        "size": volume.size,
        "availabilityZone": volume.availability_zone,
        "createdAt": _iso(volume.created_at),
        "displayName": volume.name,
        "displayDescription": volume.description,
        "volumeType": volume.volume_type.name if volume.volume_type else None,
        "snapshotId": str(volume.snapshot_id) if volume.snapshot_id else None,
        "metadata": dict(volume.metadata),
        "attachments": attachments or [{}],
    }


def _snapshot(snapshot: VolumeSnapshot) -> dict[str, Any]:
    return {"id": str(snapshot.pk), "volumeId": str(snapshot.volume_id),
            "status": snapshot.status, "size": snapshot.size,
            "createdAt": _iso(snapshot.created_at), "displayName": snapshot.name,
            "displayDescription": snapshot.description}


def _object(request: Request, key: str) -> dict[str, Any]:
    body = request.data.get(key) if isinstance(request.data, dict) else None
    if not isinstance(body, dict):
        raise errors.BadRequest(f"Invalid input: '{key}' is a required property")
    return body


class _ProxyView(ComputeView):
    def initial(self, request: Request, *args, **kwargs) -> None:
        super().initial(request, *args, **kwargs)
        if self.version.at_least("2.36"):
            raise errors.NotFound("The resource could not be found.")

    def page_query(self, request: Request) -> dict[str, str]:
        # Nova pages by limit and offset only; a malformed one is a 400.
        limit = params.limit_param(request.query_params)
        offset = params.count_param(request.query_params, "offset")
        return {k: str(v) for k, v in (("limit", limit), ("offset", offset)) if v is not None}


class Volumes(_ProxyView):
    query_params = {"GET": ("limit", "offset")}

    def get(self, request: Request) -> Response:
        self.authorize("compute:volumes")
        rows = volume_service.list_volumes(self.ctx, self.page_query(request))
        return Response({"volumes": [_volume(v) for v in rows]})

    def post(self, request: Request) -> Response:
        self.authorize("compute:volumes")
        wanted = _object(request, "volume")
        if wanted.get("size") in (None, ""):
            raise errors.BadRequest("Invalid input for field/attribute size: it is required.")
        body = {"size": wanted["size"], "name": wanted.get("display_name"),
                "description": wanted.get("display_description"),
                "metadata": wanted.get("metadata"), "volume_type": wanted.get("volume_type"),
                "availability_zone": wanted.get("availability_zone"),
                "snapshot_id": wanted.get("snapshot_id"), "imageRef": wanted.get("imageRef")}
        volume = volume_service.create_volume(self.ctx, body)
        return Response({"volume": _volume(volume)})


class VolumeItem(_ProxyView):
    def get(self, request: Request, item_id: str) -> Response:
        self.authorize("compute:volumes")
        return Response({"volume": _volume(volume_service.get_volume(self.ctx, item_id))})

    def delete(self, request: Request, item_id: str) -> Response:
        self.authorize("compute:volumes")
        volume_service.delete_volume(self.ctx, item_id)
        return Response(status=202)


class Snapshots(_ProxyView):
    query_params = {"GET": ("limit", "offset")}

    def get(self, request: Request) -> Response:
        self.authorize("compute:volumes")
        rows = snapshot_service.list_snapshots(self.ctx, self.page_query(request))
        return Response({"snapshots": [_snapshot(s) for s in rows]})

    def post(self, request: Request) -> Response:
        self.authorize("compute:volumes")
        wanted = _object(request, "snapshot")
        body = {"volume_id": wanted.get("volume_id"), "force": wanted.get("force") or False,
                "name": wanted.get("display_name"),
                "description": wanted.get("display_description"),
                "metadata": wanted.get("metadata")}
        return Response({"snapshot": _snapshot(snapshot_service.create_snapshot(self.ctx, body))})


class SnapshotItem(_ProxyView):
    def get(self, request: Request, item_id: str) -> Response:
        self.authorize("compute:volumes")
        return Response({"snapshot": _snapshot(snapshot_service.get_snapshot(self.ctx, item_id))})

    def delete(self, request: Request, item_id: str) -> Response:
        self.authorize("compute:volumes")
        snapshot_service.delete_snapshot(self.ctx, item_id)
        return Response(status=202)


class BaremetalNodes(_ProxyView):
    def get(self, request: Request) -> Response:
        self.authorize("compute:baremetal_nodes")
        return Response({"nodes": []})


class BaremetalNode(_ProxyView):
    def get(self, request: Request, node_id: str) -> Response:
        self.authorize("compute:baremetal_nodes")
        raise errors.NotFound(f"Node {node_id} could not be found.")


class AssistedSnapshots(ComputeView):
    def post(self, request: Request) -> Response:
        self.authorize("compute:assisted_volume_snapshots")
        raise errors.BadRequest(_NO_VOLUMES)


class AssistedSnapshot(ComputeView):
    def delete(self, request: Request, snapshot_id: str) -> Response:
        self.authorize("compute:assisted_volume_snapshots")
        raise errors.NotFound(f"Snapshot {snapshot_id} could not be found.")


urlpatterns = [
    path("/os-volumes", Volumes.as_view()),
    path("/os-volumes/detail", Volumes.as_view()),
    path("/os-volumes/<str:item_id>", VolumeItem.as_view()),
    path("/os-snapshots", Snapshots.as_view()),
    path("/os-snapshots/detail", Snapshots.as_view()),
    path("/os-snapshots/<str:item_id>", SnapshotItem.as_view()),
    path("/os-baremetal-nodes", BaremetalNodes.as_view()),
    path("/os-baremetal-nodes/<str:node_id>", BaremetalNode.as_view()),
    path("/os-assisted-volume-snapshots", AssistedSnapshots.as_view()),
    path("/os-assisted-volume-snapshots/<str:snapshot_id>", AssistedSnapshot.as_view()),
]
