"""/os-simple-tenant-usage (every project, admin) and /os-simple-tenant-usage/{project} (the
project's readers, or an admin): what servers used over [start, end), by default the last day up
to now. From 2.40 the server usages are paged (limit, marker; tenant_usages_links)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response

from cloud import errors
from cloud.compute import usage

from ..base import ComputeView
from . import params
from .bodies import iso_micro

_FORMATS = ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%d %H:%M:%S.%f")


def _moment(raw: str | None, default: datetime) -> datetime:
    if not raw:
        return default
    for fmt in _FORMATS:
        try:
            return datetime.strptime(raw, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise errors.BadRequest(f"Invalid datetime string: {raw}: Datetime is in invalid format")


def _server_body(server: usage.ServerUsage) -> dict:
    instance = server.instance
    return {
        "instance_id": str(instance.uuid),
        "name": instance.display_name,
        "tenant_id": instance.project_id,
        "flavor": (instance.flavor_snapshot or {}).get("name", ""),
        "hours": server.hours,
        "memory_mb": instance.memory_mb,
        "local_gb": server.local_gb,
        "vcpus": instance.vcpus,
        "started_at": iso_micro(instance.launched_at),
        "ended_at": iso_micro(instance.terminated_at),
        "state": server.state,
        "uptime": server.uptime,
    }


def _project_body(project: usage.ProjectUsage, detailed: bool) -> dict:
    body: dict = {"tenant_id": project.project_id}
    if detailed:
        body["server_usages"] = [_server_body(s) for s in project.servers]
    body.update({
        "total_local_gb_usage": project.total_local_gb,
        "total_vcpus_usage": project.total("vcpus"),
        "total_memory_mb_usage": project.total("memory_mb"),
        "total_hours": project.total_hours,
        "start": iso_micro(project.start),
        "stop": iso_micro(project.stop),
    })
    return body


class _UsageView(ComputeView):
    def period(self) -> tuple[datetime, datetime]:
        query = self.request.query_params
        # Nova's defaults: both "now", the end read a moment after the start.
        start = _moment(query.get("start"), datetime.now(UTC))
        end = _moment(query.get("end"), max(datetime.now(UTC), start + timedelta(microseconds=1)))
        return start, end

    def read(self, project_id: str | None) -> tuple[list[usage.ProjectUsage],
                                                    list[usage.ServerUsage], int | None]:
        query = self.request.query_params
        start, end = self.period()
        paged = self.version.at_least("2.40")
        # Paging came with 2.40; a malformed limit is refused at any version all the same.
        limit = params.limit_param(query)
        limit = limit if paged else None
        projects, servers = usage.usage(start, end, project_id=project_id, limit=limit,
                                        marker=query.get("marker") if paged else None)
        return projects, servers, limit

    def next_link(self, path: str, servers: list[usage.ServerUsage], limit: int | None) -> list:
        if limit is None or limit == 0 or len(servers) < limit:
            return []
        query = {k: v for k, v in self.request.query_params.items() if k != "marker"}
        query["marker"] = str(servers[-1].instance.uuid)
        return [{"rel": "next", "href": f"{self.compute_url(path)}?{urlencode(query)}"}]


class UsageList(_UsageView):
    query_params = {"GET": ("start", "end", "detailed", "limit", "marker")}
    strict_query_from = "2.75"

    def get(self, request: Request) -> Response:
        self.authorize("compute:usage:list")
        detailed = request.query_params.get("detailed", "0") == "1"
        projects, servers, limit = self.read(None)
        body: dict = {"tenant_usages": [_project_body(p, detailed) for p in projects]}
        if self.version.at_least("2.40"):
            links = self.next_link("os-simple-tenant-usage", servers, limit)
            if links:
                body["tenant_usages_links"] = links
        return Response(body)


class UsageItem(_UsageView):
    query_params = {"GET": ("start", "end", "limit", "marker")}
    strict_query_from = "2.75"

    def get(self, request: Request, project_id: str) -> Response:
        self.authorize("compute:usage:show")
        if project_id != self.ctx.project_id:
            self.authorize("compute:usage:other_project")
        projects, servers, limit = self.read(project_id)
        body: dict = {"tenant_usage": _project_body(projects[0], True) if projects else {}}
        if self.version.at_least("2.40"):
            links = self.next_link(f"os-simple-tenant-usage/{project_id}", servers, limit)
            if links:
                body["tenant_usage_links"] = links
        return Response(body)


urlpatterns = [
    path("/os-simple-tenant-usage", UsageList.as_view()),
    path("/os-simple-tenant-usage/<str:project_id>", UsageItem.as_view()),
]
