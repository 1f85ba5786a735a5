"""/os-services and /os-hypervisors (admin)."""

from __future__ import annotations

from rest_framework.request import Request
from rest_framework.response import Response

from cloud import errors
from cloud.compute import availability_zones, hosts

from ..base import ComputeView
from . import bodies

_SERVICE_UPDATE = {
    "type": "object",
    "properties": {
        "status": {"enum": ["enabled", "disabled"]},
        "disabled_reason": {"type": ["string", "null"], "maxLength": 255},
        "forced_down": {"type": "boolean"},
    },
    "additionalProperties": False,
    "minProperties": 1,
}


class ServiceList(ComputeView):
    query_params = {"GET": ("binary", "host")}

    def get(self, request: Request) -> Response:
        self.authorize("compute:services")
        services = hosts.list_services(request.query_params.get("binary"), request.query_params.get("host"))
        zones = availability_zones.host_zones(s.host for s in services)
        return Response(
            {"services": [bodies.service_body(s, self.version, zones) for s in services]}
        )


class ServiceItem(ComputeView):
    body_schemas = {"PUT": _SERVICE_UPDATE}

    def put(self, request: Request, service_id: str) -> Response:
        self.authorize("compute:services")
        if not self.version.at_least("2.53"):
            raise errors.NotFound("Use PUT /os-services/{service_id} from microversion 2.53.")
        body = self.valid_body()
        if body.get("disabled_reason") and body.get("status") != "disabled":
            raise errors.BadRequest("disabled_reason is only allowed with status 'disabled'.")
        service = hosts.update_service(
            hosts.find_service(service_id),
            status=body.get("status"),
            disabled_reason=body.get("disabled_reason"),
            forced_down=body.get("forced_down"),
        )
        zones = availability_zones.host_zones([service.host])
        return Response({"service": bodies.service_body(service, self.version, zones)})

    def delete(self, request: Request, service_id: str) -> Response:
        self.authorize("compute:services")
        hosts.delete_service(hosts.find_service(service_id))
        return Response(status=204)


class HypervisorList(ComputeView):
    detail = False
    query_params = {"GET": ("hypervisor_hostname_pattern",)}

    def get(self, request: Request) -> Response:
        self.authorize("compute:hypervisors")
        nodes = hosts.list_nodes(request.query_params.get("hypervisor_hostname_pattern"))
        build = bodies.hypervisor_detail if self.detail else bodies.hypervisor_summary
        return Response({"hypervisors": [build(n, self.version) for n in nodes]})


class HypervisorDetailList(HypervisorList):
    detail = True


class HypervisorItem(ComputeView):
    def get(self, request: Request, node_id: str) -> Response:
        self.authorize("compute:hypervisors")
        node = hosts.find_node(node_id)
        return Response({"hypervisor": bodies.hypervisor_detail(node, self.version)})


class HypervisorStatistics(ComputeView):
    def get(self, request: Request) -> Response:
        self.authorize("compute:hypervisors")
        return Response({"hypervisor_statistics": hosts.statistics()})
