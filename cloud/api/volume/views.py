"""Block Storage v3 over HTTP: volumes (with their actions and metadata) and snapshots, thin over
cloud/volumes/. Paths carry the project id as Cinder's do; the project acted in is the token's."""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.response import Response

from cloud import errors
from cloud.volumes import snapshots, volumes

from .base import VolumeView
from .bodies import snapshot_body, type_body, volume_body, volume_summary


def _object(key: str) -> dict[str, Any]:
    return {"type": "object", "required": [key], "properties": {key: {"type": "object"}}}


_METADATA = _object("metadata")
_META = _object("meta")
VOLUME_LIST_QUERY = ("all_tenants", "project_id", "name", "status", "availability_zone",
                     "bootable", "size", "volume_type", "metadata", "limit", "offset", "marker",
                     "sort", "sort_key", "sort_dir", "with_count")
SNAPSHOT_LIST_QUERY = ("all_tenants", "project_id", "name", "status", "volume_id", "limit",
                       "offset", "marker", "sort", "sort_key", "sort_dir", "with_count")


class Volumes(VolumeView):
    body_schemas = {"POST": _object("volume")}
    query_params = {"GET": VOLUME_LIST_QUERY}
    detail = False

    def get(self, request: Request, project_id: str) -> Response:
        rows = list(volumes.list_volumes(self.ctx, self.query()))
        if self.detail:
            items = [volume_body(self, v) for v in rows]
        else:
            items = [volume_summary(self, v) for v in rows]
        body: dict[str, Any] = {"volumes": items}
        body.update(self.next_link("volumes", [str(v.pk) for v in rows]))
        if self.version.at_least("3.45") and request.query_params.get("with_count"):
            body["count"] = len(items)
        return Response(body)

    def post(self, request: Request, project_id: str) -> Response:
        data = self.valid_body()
        body = dict(data["volume"])
        hints = data.get("OS-SCH-HNT:scheduler_hints")
        if hints is not None and not isinstance(hints, dict):
            raise errors.BadRequest("Invalid input: scheduler hints must be an object.")
        volume = volumes.create_volume(self.ctx, body)
        return Response({"volume": volume_body(self, volume, extended=False)}, status=202)


class VolumesDetail(Volumes):
    detail = True
    http_method_names = ["get", "head", "options"]


class VolumeSummary(VolumeView):
    query_params = {"GET": ("all_tenants",)}

    def get(self, request: Request, project_id: str) -> Response:
        self.require_version("3.12")
        summary = volumes.summary(self.ctx, self.query())
        if not self.version.at_least("3.36"):
            summary.pop("metadata")
        return Response({"volume-summary": summary})


class VolumeDetail(VolumeView):
    body_schemas = {"PUT": _object("volume")}
    query_params = {"DELETE": ("cascade", "force")}

    def get(self, request: Request, project_id: str, volume_id: str) -> Response:
        return Response({"volume": volume_body(self, volumes.get_volume(self.ctx, volume_id))})

    def put(self, request: Request, project_id: str, volume_id: str) -> Response:
        body = self.valid_body("volume")
        volume = volumes.update_volume(self.ctx, volume_id, body)
        return Response({"volume": volume_body(self, volume, extended=False)})

    def delete(self, request: Request, project_id: str, volume_id: str) -> Response:
        flag = request.query_params.get
        cascade = (flag("cascade") or "false").lower() in ("true", "1", "yes")
        force = (flag("force") or "false").lower() in ("true", "1", "yes")
        volumes.delete_volume(self.ctx, volume_id, cascade=cascade, force=force)
        return Response(status=202)


# The volume actions of the attach flow before the attachments API (3.27).
_LEGACY_ATTACH = ("os-attach", "os-detach", "os-begin_detaching", "os-roll_detaching",
                  "os-initialize_connection", "os-terminate_connection", "os-force_detach")


class VolumeAction(VolumeView):
    """POST /volumes/{id}/action: one key naming the action (Cinder's volume actions)."""

    body_schemas = {"POST": {"type": "object", "minProperties": 1, "maxProperties": 1}}

    def post(self, request: Request, project_id: str, volume_id: str) -> Response:
        data = self.valid_body()
        [(action, args)] = data.items()
        args = args if isinstance(args, dict) else {}
        volumes.get_volume(self.ctx, volume_id)  # a missing volume is a 404, whatever the action
        if action == "os-reserve":
            volumes.reserve(self.ctx, volume_id)
            return Response(status=202)
        if action == "os-unreserve":
            volumes.unreserve(self.ctx, volume_id)
            return Response(status=202)
        if action in _LEGACY_ATTACH:
            raise errors.BadRequest(f"Invalid input received: {action} is not supported; "
                                    "attach through the attachments API (3.27) or Nova.")
        if action == "os-extend":
            if "new_size" not in args:
                raise errors.BadRequest("Invalid input for field/attribute new_size.")
            volumes.extend_volume(self.ctx, volume_id, args["new_size"])
            return Response(status=202)
        if action == "os-reset_status":
            volumes.reset_status(self.ctx, volume_id, args)
            return Response(status=202)
        if action == "os-force_delete":
            volumes.delete_volume(self.ctx, volume_id, force=True)
            return Response(status=202)
        if action == "os-retype":
            volumes.retype(self.ctx, volume_id, args)
            return Response(status=202)
        if action == "os-set_bootable":
            if "bootable" not in args:
                raise errors.BadRequest("Invalid input for field/attribute bootable.")
            volumes.set_bootable(self.ctx, volume_id, args["bootable"])
            return Response(status=200)
        if action == "os-update_readonly_flag":
            if "readonly" not in args:
                raise errors.BadRequest("Invalid input for field/attribute readonly.")
            volumes.set_readonly(self.ctx, volume_id, args["readonly"])
            return Response(status=202)
        if action == "os-volume_upload_image":
            volume, image = volumes.upload_to_image(self.ctx, volume_id, args)
            vtype = volume.volume_type
            return Response({"os-volume_upload_image": {
                "id": str(volume.pk), "updated_at": volume_body(self, volume)["updated_at"],
                "status": volume.status, "display_description": volume.description,
                "size": volume.size, "volume_type": type_body(vtype) if vtype else None,
                "image_id": str(image.pk), "container_format": image.container_format,
                "disk_format": image.disk_format, "image_name": image.name,
            }}, status=202)
        raise errors.BadRequest(f"There is no such action: {action}")


class VolumeMetadata(VolumeView):
    body_schemas = {"POST": _METADATA, "PUT": _METADATA}

    def get(self, request: Request, project_id: str, volume_id: str) -> Response:
        return Response({"metadata": volumes.get_metadata(self.ctx, volume_id)})

    def post(self, request: Request, project_id: str, volume_id: str) -> Response:
        values = self.valid_body("metadata")
        return Response({"metadata": volumes.set_metadata(self.ctx, volume_id, values)})

    def put(self, request: Request, project_id: str, volume_id: str) -> Response:
        values = self.valid_body("metadata")
        return Response({"metadata": volumes.set_metadata(self.ctx, volume_id, values,
                                                          replace=True)})


class VolumeMetadataItem(VolumeView):
    body_schemas = {"PUT": _META}

    def get(self, request: Request, project_id: str, volume_id: str, key: str) -> Response:
        return Response({"meta": volumes.get_metadata_item(self.ctx, volume_id, key)})

    def put(self, request: Request, project_id: str, volume_id: str, key: str) -> Response:
        meta = self.valid_body("meta")
        if list(meta) != [key]:
            raise errors.BadRequest("Request body and URI mismatch")
        volumes.set_metadata(self.ctx, volume_id, meta)
        return Response({"meta": meta})

    def delete(self, request: Request, project_id: str, volume_id: str, key: str) -> Response:
        volumes.delete_metadata_item(self.ctx, volume_id, key)
        return Response(status=200)


# --- snapshots


class Snapshots(VolumeView):
    body_schemas = {"POST": _object("snapshot")}
    query_params = {"GET": SNAPSHOT_LIST_QUERY}
    detail = False

    def get(self, request: Request, project_id: str) -> Response:
        rows = list(snapshots.list_snapshots(self.ctx, self.query()))
        items = [snapshot_body(self, s, detail=self.detail) for s in rows]
        body: dict[str, Any] = {"snapshots": items}
        body.update(self.next_link("snapshots", [str(s.pk) for s in rows]))
        if self.version.at_least("3.45") and request.query_params.get("with_count"):
            body["count"] = len(items)
        return Response(body)

    def post(self, request: Request, project_id: str) -> Response:
        snapshot = snapshots.create_snapshot(self.ctx, self.valid_body("snapshot"))
        return Response({"snapshot": snapshot_body(self, snapshot, detail=False)}, status=202)


class SnapshotsDetail(Snapshots):
    detail = True
    http_method_names = ["get", "head", "options"]


class SnapshotDetail(VolumeView):
    body_schemas = {"PUT": _object("snapshot")}

    def get(self, request: Request, project_id: str, snapshot_id: str) -> Response:
        snapshot = snapshots.get_snapshot(self.ctx, snapshot_id)
        return Response({"snapshot": snapshot_body(self, snapshot)})

    def put(self, request: Request, project_id: str, snapshot_id: str) -> Response:
        snapshot = snapshots.update_snapshot(self.ctx, snapshot_id, self.valid_body("snapshot"))
        return Response({"snapshot": snapshot_body(self, snapshot, detail=False)})

    def delete(self, request: Request, project_id: str, snapshot_id: str) -> Response:
        snapshots.delete_snapshot(self.ctx, snapshot_id)
        return Response(status=202)


class SnapshotAction(VolumeView):
    body_schemas = {"POST": {"type": "object", "minProperties": 1, "maxProperties": 1}}

    def post(self, request: Request, project_id: str, snapshot_id: str) -> Response:
        [(action, args)] = self.valid_body().items()
        args = args if isinstance(args, dict) else {}
        if action == "os-reset_status":
            snapshots.reset_status(self.ctx, snapshot_id, args.get("status"))
            return Response(status=202)
        if action == "os-force_delete":
            snapshots.delete_snapshot(self.ctx, snapshot_id, force=True)
            return Response(status=202)
        raise errors.BadRequest(f"There is no such action: {action}")


class SnapshotMetadata(VolumeView):
    body_schemas = {"POST": _METADATA, "PUT": _METADATA}

    def get(self, request: Request, project_id: str, snapshot_id: str) -> Response:
        snapshot = snapshots.get_snapshot(self.ctx, snapshot_id)
        return Response({"metadata": dict(snapshot.metadata)})

    def post(self, request: Request, project_id: str, snapshot_id: str) -> Response:
        values = self.valid_body("metadata")
        return Response({"metadata": snapshots.set_metadata(self.ctx, snapshot_id, values)})

    def put(self, request: Request, project_id: str, snapshot_id: str) -> Response:
        values = self.valid_body("metadata")
        return Response({"metadata": snapshots.set_metadata(self.ctx, snapshot_id, values,
                                                            replace=True)})


class SnapshotMetadataItem(VolumeView):
    body_schemas = {"PUT": _META}

    def get(self, request: Request, project_id: str, snapshot_id: str, key: str) -> Response:
        metadata = snapshots.get_snapshot(self.ctx, snapshot_id).metadata
        if key not in metadata:
            raise errors.NotFound(f"Snapshot {snapshot_id} has no metadata with key {key}.")
        return Response({"meta": {key: metadata[key]}})

    def put(self, request: Request, project_id: str, snapshot_id: str, key: str) -> Response:
        meta = self.valid_body("meta")
        if list(meta) != [key]:
            raise errors.BadRequest("Request body and URI mismatch")
        snapshots.set_metadata(self.ctx, snapshot_id, meta)
        return Response({"meta": meta})

    def delete(self, request: Request, project_id: str, snapshot_id: str, key: str) -> Response:
        snapshots.delete_metadata_item(self.ctx, snapshot_id, key)
        return Response(status=200)
