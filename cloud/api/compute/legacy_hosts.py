"""/os-hosts (admins, until 2.42; then 404, as Nova: os-hypervisors and os-services replace it):
the hosts of every service and what one compute host holds. Kumo's hosts do not take power or
maintenance orders from the API, so those answer Nova's 501 for a driver without them."""

from __future__ import annotations

from collections import defaultdict

from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response

from cloud import errors
from cloud.compute import availability_zones, hosts, hypervisors
from cloud.compute.models import COMPUTE_BINARY

from ..base import ComputeView
from .hosts import FeatureNotSupported

_UPDATE = {
    "type": "object",
    "minProperties": 1,
    "properties": {
        "status": {"type": "string", "enum": ["enable", "disable", "Enable", "Disable",
                                              "ENABLE", "DISABLE"]},
        "maintenance_mode": {"type": "string", "enum": ["enable", "disable", "Enable",
                                                        "Disable", "ENABLE", "DISABLE"]},
    },
    "additionalProperties": False,
}


class _HostsView(ComputeView):
    def initial(self, request: Request, *args, **kwargs) -> None:
        super().initial(request, *args, **kwargs)
        if self.version.at_least("2.43"):
            raise errors.NotFound("The resource could not be found.")

    def compute_host(self, host: str) -> None:
        if hosts.compute_service(host) is None:
            raise errors.NotFound(f"Compute host {host} could not be found.")


class HostList(_HostsView):
    query_params = {"GET": ("zone",)}

    def get(self, request: Request) -> Response:
        self.authorize("compute:hosts")
        services = [s for s in hosts.list_services() if not s.disabled]
        zones = availability_zones.host_zones(s.host for s in services)
        listed = []
        for service in services:
            zone = (availability_zones.zone_of(service.host, zones)
                    if service.binary == COMPUTE_BINARY else availability_zones.INTERNAL_ZONE)
            if request.query_params.get("zone") in (None, "", zone):
                listed.append({"host_name": service.host,
                               "service": service.binary.removeprefix("nova-"), "zone": zone})
        return Response({"hosts": listed})


class HostItem(_HostsView):
    body_schemas = {"PUT": _UPDATE}

    def get(self, request: Request, host: str) -> Response:
        self.authorize("compute:hosts")
        node = hosts.list_nodes().filter(host=host).first()
        if node is None:
            raise errors.NotFound(f"Compute host {host} could not be found.")
        placed = hypervisors.servers_on(host)
        resources = [
            {"host": host, "project": "(total)", "cpu": node.vcpus,
             "memory_mb": node.memory_mb, "disk_gb": node.local_gb},
            {"host": host, "project": "(used_now)", "cpu": node.vcpus_used,
             "memory_mb": node.memory_mb_used, "disk_gb": node.local_gb_used},
        ]
        by_project: dict[str, dict] = defaultdict(lambda: {"cpu": 0, "memory_mb": 0,
                                                           "disk_gb": 0})
        for instance in placed:
            used = by_project[instance.project_id]
            used["cpu"] += instance.vcpus
            used["memory_mb"] += instance.memory_mb
            used["disk_gb"] += instance.root_gb + instance.ephemeral_gb
        resources.append({"host": host, "project": "(used_max)",
                          **{k: sum(p[k] for p in by_project.values())
                             for k in ("cpu", "memory_mb", "disk_gb")}})
        resources += [{"host": host, "project": project, **used}
                      for project, used in by_project.items()]
        return Response({"host": [{"resource": r} for r in resources]})

    def put(self, request: Request, host: str) -> Response:
        self.authorize("compute:hosts")
        self.valid_body()
        self.compute_host(host)
        raise FeatureNotSupported("Feature not supported: hosts take no status or maintenance "
                                  "orders here; use os-services to disable a host.")


class HostPowerAction(_HostsView):
    def get(self, request: Request, host: str) -> Response:
        self.authorize("compute:hosts")
        self.compute_host(host)
        raise FeatureNotSupported("Feature not supported: host power actions")


urlpatterns = [
    path("/os-hosts", HostList.as_view()),
    path("/os-hosts/<str:host>", HostItem.as_view()),
    path("/os-hosts/<str:host>/reboot", HostPowerAction.as_view()),
    path("/os-hosts/<str:host>/shutdown", HostPowerAction.as_view()),
    path("/os-hosts/<str:host>/startup", HostPowerAction.as_view()),
]
