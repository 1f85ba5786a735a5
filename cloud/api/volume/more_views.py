"""Block Storage v3 over HTTP: discovery, volume types (extra specs, private type access),
quotas, limits, availability zones, the volume hosts as os-services, extensions and messages."""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.response import Response

from cloud import errors
from cloud.api.base import PublicView
from cloud.api.error_bodies import VOLUME
from cloud.volumes import common, hosts, quotas, types

from .base import MAX_VERSION, MIN_VERSION, VolumeView
from .bodies import type_body
from .views import _object

# --- discovery (no token: keystoneauth asks before it authenticates)


def _version(base: str) -> dict[str, Any]:
    return {
        "id": "v3.0", "status": "CURRENT", "version": str(MAX_VERSION),
        "min_version": str(MIN_VERSION), "updated": "2023-08-31T00:00:00Z",
        "links": [{"rel": "describedby", "type": "text/html",
                   "href": "https://docs.openstack.org/"},
                  {"rel": "self", "href": f"{base}/volume/v3/"}],
        "media-types": [{"base": "application/json",
                         "type": "application/vnd.openstack.volume+json;version=3"}],
    }


class VolumeRoot(PublicView):
    family = VOLUME
    public_methods = ("GET",)

    def get(self, request: Request) -> Response:
        return Response({"versions": [_version(self.base_url())]}, status=300)


class VolumeV3Root(PublicView):
    family = VOLUME
    public_methods = ("GET",)

    def get(self, request: Request, project_id: str = "") -> Response:
        return Response({"versions": [_version(self.base_url())]})


# --- types


class Types(VolumeView):
    body_schemas = {"POST": _object("volume_type")}
    query_params = {"GET": ("is_public",)}

    def get(self, request: Request, project_id: str) -> Response:
        rows = types.list_types(self.ctx, is_public=request.query_params.get("is_public"))
        return Response({"volume_types": [type_body(t) for t in rows]})

    def post(self, request: Request, project_id: str) -> Response:
        vtype = types.create_type(self.ctx, self.valid_body("volume_type"))
        return Response({"volume_type": type_body(vtype, for_create=True)})


class TypeDetail(VolumeView):
    body_schemas = {"PUT": _object("volume_type")}

    def get(self, request: Request, project_id: str, type_id: str) -> Response:
        return Response({"volume_type": type_body(types.get_type(self.ctx, type_id))})

    def put(self, request: Request, project_id: str, type_id: str) -> Response:
        vtype = types.update_type(self.ctx, type_id, self.valid_body("volume_type"))
        return Response({"volume_type": type_body(vtype, for_update=True)})

    def delete(self, request: Request, project_id: str, type_id: str) -> Response:
        types.delete_type(self.ctx, type_id)
        return Response(status=202)


class DefaultType(VolumeView):
    """GET /types/default: the type a volume created without one gets."""

    def get(self, request: Request, project_id: str) -> Response:
        return Response({"volume_type": type_body(types.get_type(self.ctx, "default"))})


class ExtraSpecs(VolumeView):
    body_schemas = {"POST": _object("extra_specs")}

    def get(self, request: Request, project_id: str, type_id: str) -> Response:
        return Response({"extra_specs": types.get_extra_specs(self.ctx, type_id)})

    def post(self, request: Request, project_id: str, type_id: str) -> Response:
        specs = types.set_extra_specs(self.ctx, type_id, self.valid_body("extra_specs"))
        return Response({"extra_specs": specs})


class ExtraSpec(VolumeView):
    body_schemas = {"PUT": {"type": "object", "minProperties": 1, "maxProperties": 1}}

    def get(self, request: Request, project_id: str, type_id: str, key: str) -> Response:
        return Response(types.get_extra_spec(self.ctx, type_id, key))

    def put(self, request: Request, project_id: str, type_id: str, key: str) -> Response:
        body = self.valid_body()
        if list(body) != [key]:
            raise errors.BadRequest("Request body and URI mismatch")
        return Response(types.set_extra_specs(self.ctx, type_id, body))

    def delete(self, request: Request, project_id: str, type_id: str, key: str) -> Response:
        types.delete_extra_spec(self.ctx, type_id, key)
        return Response(status=202)


class TypeAccess(VolumeView):
    def get(self, request: Request, project_id: str, type_id: str) -> Response:
        projects = types.list_access(self.ctx, type_id)
        return Response({"volume_type_access": [
            {"volume_type_id": type_id, "project_id": pid} for pid in projects]})


class TypeAction(VolumeView):
    body_schemas = {"POST": {"type": "object", "minProperties": 1, "maxProperties": 1}}

    def post(self, request: Request, project_id: str, type_id: str) -> Response:
        [(action, args)] = self.valid_body().items()
        target = args.get("project") if isinstance(args, dict) else None
        if action not in ("addProjectAccess", "removeProjectAccess"):
            raise errors.BadRequest(f"There is no such action: {action}")
        if not target:
            raise errors.BadRequest("Missing required element 'project' in request body.")
        if action == "addProjectAccess":
            types.add_access(self.ctx, type_id, target)
        else:
            types.remove_access(self.ctx, type_id, target)
        return Response(status=202)


# --- quotas and limits


class QuotaSet(VolumeView):
    body_schemas = {"PUT": _object("quota_set")}
    query_params = {"GET": ("usage",), "PUT": ("skip_validation",)}

    def get(self, request: Request, project_id: str, target: str) -> Response:
        usage = (request.query_params.get("usage") or "").lower() in ("true", "1", "yes")
        values: dict[str, Any] = (quotas.get_usage(self.ctx, target) if usage
                                  else quotas.get_quota(self.ctx, target))
        return Response({"quota_set": {"id": target, **values}})

    def put(self, request: Request, project_id: str, target: str) -> Response:
        skip = (request.query_params.get("skip_validation") or "true").lower()
        limits = quotas.update_quota(self.ctx, target, self.valid_body("quota_set"),
                                     validate=skip in ("false", "0", "no"))
        return Response({"quota_set": limits})

    def delete(self, request: Request, project_id: str, target: str) -> Response:
        quotas.reset_quota(self.ctx, target)
        return Response(status=200)


class QuotaDefaults(VolumeView):
    def get(self, request: Request, project_id: str, target: str) -> Response:
        return Response({"quota_set": {"id": target, **quotas.get_defaults(self.ctx, target)}})


class Limits(VolumeView):
    def get(self, request: Request, project_id: str) -> Response:
        common.authorize(self.ctx, "volume:limits")
        scope = self.ctx.scope
        limits = quotas.limits_for(scope)
        used = quotas.usage(scope)
        return Response({"limits": {"rate": [], "absolute": {
            "maxTotalVolumes": limits["volumes"],
            "maxTotalSnapshots": limits["snapshots"],
            "maxTotalVolumeGigabytes": limits["gigabytes"],
            "maxTotalBackups": limits["backups"],
            "maxTotalBackupGigabytes": limits["backup_gigabytes"],
            "totalVolumesUsed": used["volumes"],
            "totalSnapshotsUsed": used["snapshots"],
            "totalGigabytesUsed": used["gigabytes"],
            "totalBackupsUsed": 0,
            "totalBackupGigabytesUsed": 0,
        }}})


# --- zones, services, extensions, messages


class AvailabilityZones(VolumeView):
    def get(self, request: Request, project_id: str) -> Response:
        return Response({"availabilityZoneInfo": hosts.availability_zones(self.ctx)})


class Services(VolumeView):
    query_params = {"GET": ("host", "binary")}

    def get(self, request: Request, project_id: str) -> Response:
        services = hosts.list_services(self.ctx, self.query())
        return Response({"services": [
            {**s, "updated_at": s["updated_at"].isoformat() if s["updated_at"] else None}
            for s in services]})


class ServiceAction(VolumeView):
    body_schemas = {"PUT": {"type": "object"}}

    def put(self, request: Request, project_id: str, action: str) -> Response:
        service = hosts.set_service(self.ctx, action, self.valid_body())
        body = {"host": service["host"], "binary": service["binary"],
                "status": service["status"], "disabled": service["status"] == "disabled"}
        if action == "disable-log-reason":
            body["disabled_reason"] = service["disabled_reason"]
        return Response(body)


class Extensions(VolumeView):
    def get(self, request: Request, project_id: str) -> Response:
        return Response({"extensions": []})


class Messages(VolumeView):
    """User messages (3.3): none are kept; a volume's status_reason says why it failed."""

    def get(self, request: Request, project_id: str) -> Response:
        self.require_version("3.3")
        common.authorize(self.ctx, "volume:messages")
        return Response({"messages": []})


class MessageDetail(VolumeView):
    def get(self, request: Request, project_id: str, message_id: str) -> Response:
        self.require_version("3.3")
        common.authorize(self.ctx, "volume:messages")
        raise errors.NotFound(f"Message {message_id} could not be found.")
