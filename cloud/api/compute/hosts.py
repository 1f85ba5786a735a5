"""/os-services and /os-hypervisors (admin).

Services: below 2.53 a service is changed with PUT /os-services/{enable|disable|
disable-log-reason|force-down (2.11)} naming it by host and binary in the body; from 2.53 with
PUT /os-services/{uuid}. Hypervisors: paging from 2.33; below 2.53 the search and servers routes
(/os-hypervisors/{pattern}/search and /servers), from 2.53 the hypervisor_hostname_pattern and
with_servers parameters; /statistics and /{id}/uptime until 2.87.
"""

from __future__ import annotations

from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response

from cloud import errors
from cloud.compute import availability_zones, hosts, hypervisors
from cloud.compute.models import COMPUTE_BINARY, ComputeNode
from cloud.ids import parse_uuid

from ..base import ComputeView, Versioned
from . import host_bodies, params

_SERVICE_UPDATE = {
    "type": "object",
    "properties": {
        "status": {"enum": ["enabled", "disabled"]},
        "disabled_reason": {"type": ["string", "null"], "minLength": 1, "maxLength": 255},
        "forced_down": {"type": ["boolean", "string"],
                        "enum": [True, False, "true", "false", "True", "False", "1", "0"]},
    },
    "additionalProperties": False,
}
_HOST_BINARY = {
    "host": {"type": "string", "minLength": 1, "maxLength": 255},
    "binary": {"type": "string", "minLength": 1, "maxLength": 255},
}
# The legacy actions' bodies (2.1-2.52): the service named by host and binary.
_SERVICE_ACTION = {
    "type": "object",
    "required": ["host", "binary"],
    "properties": {
        **_HOST_BINARY,
        "disabled_reason": {"type": "string", "minLength": 1, "maxLength": 255},
        "forced_down": {"type": ["boolean", "string"]},
    },
    "additionalProperties": False,
}
_LEGACY_ACTIONS = ("enable", "disable", "disable-log-reason", "force-down")


class FeatureNotSupported(errors.KumoError):
    """Nova's 501 for what this deployment's hosts cannot do."""

    status = 501
    compute_key = "notImplemented"


class ServiceList(ComputeView):
    query_params = {"GET": ("binary", "host")}

    def get(self, request: Request) -> Response:
        self.authorize("compute:services")
        services = hosts.list_services(request.query_params.get("binary"), request.query_params.get("host"))
        zones = availability_zones.host_zones(s.host for s in services)
        return Response(
            {"services": [host_bodies.service_body(s, self.version, zones) for s in services]}
        )


class ServiceItem(ComputeView):
    body_schemas = {"PUT": Versioned(("2.1", _SERVICE_ACTION), ("2.53", _SERVICE_UPDATE))}

    def put(self, request: Request, service_id: str) -> Response:
        self.authorize("compute:services")
        if not self.version.at_least("2.53"):
            return self._legacy_action(service_id)
        if parse_uuid(service_id) is None:
            raise errors.BadRequest(f"Invalid uuid {service_id}")
        body = self.valid_body()
        service = hosts.find_service(service_id)
        if service.binary != COMPUTE_BINARY:
            raise errors.BadRequest(f"Updating a {service.binary} service is not supported. "
                                    "Only nova-compute services can be updated.")
        if "status" not in body and "forced_down" not in body:
            raise errors.BadRequest("No updates were requested. Fields 'status' or "
                                    "'forced_down' should be specified.")
        if body.get("disabled_reason") and body.get("status") != "disabled":
            raise errors.BadRequest("Specifying 'disabled_reason' with status 'enabled' is "
                                    "invalid.")
        forced = body.get("forced_down")
        service = hosts.update_service(
            service,
            status=body.get("status"),
            disabled_reason=body.get("disabled_reason"),
            forced_down=None if forced is None else str(forced).lower() in ("true", "1"),
        )
        zones = availability_zones.host_zones([service.host])
        return Response({"service": host_bodies.service_body(service, self.version, zones)})

    def _legacy_action(self, action: str) -> Response:
        if action not in _LEGACY_ACTIONS or (
                action == "force-down" and not self.version.at_least("2.11")):
            raise errors.NotFound("Unknown action")
        body = self.valid_body()
        host, binary = body["host"], body["binary"]
        if binary != COMPUTE_BINARY:
            raise errors.BadRequest(f"Updating a {binary} service is not supported. Only "
                                    "nova-compute services can be updated.")
        service = hosts.list_services(binary, host).first()
        if service is None:
            raise errors.NotFound(f"Service {binary} on host {host} could not be found.")
        answer: dict = {"host": host, "binary": binary}
        if action == "force-down":
            if "forced_down" not in body:
                raise errors.BadRequest("Missing forced_down field")
            forced = str(body["forced_down"]).lower() in ("true", "1", "yes", "on")
            hosts.update_service(service, forced_down=forced)
            answer["forced_down"] = forced
        elif action == "enable":
            hosts.update_service(service, status="enabled")
            answer["status"] = "enabled"
        else:
            reason = body.get("disabled_reason")
            if action == "disable-log-reason" and not reason:
                raise errors.BadRequest("Missing disabled reason field")
            reason = reason if action == "disable-log-reason" else None
            hosts.update_service(service, status="disabled", disabled_reason=reason)
            answer["status"] = "disabled"
            if reason:
                answer["disabled_reason"] = reason
        return Response({"service": answer})

    def delete(self, request: Request, service_id: str) -> Response:
        self.authorize("compute:services")
        if self.version.at_least("2.53") and parse_uuid(service_id) is None:
            raise errors.BadRequest(f"Invalid uuid {service_id}")
        if not self.version.at_least("2.53") and not service_id.isdigit():
            raise errors.BadRequest(f"Invalid input received: id {service_id} must be an integer")
        hosts.delete_service(hosts.find_service(service_id))
        return Response(status=204)


class _HypervisorView(ComputeView):
    def flag(self, name: str) -> bool:
        raw = self.request.query_params.get(name)
        if raw is None:
            return False
        lowered = raw.strip().lower()
        if lowered in ("1", "t", "true", "on", "y", "yes"):
            return True
        if lowered in ("0", "f", "false", "off", "n", "no"):
            return False
        raise errors.BadRequest(f"Invalid input for query parameters {name}. Value: {raw}.")

    def node_body(self, node: ComputeNode, detail: bool, servers: list | None,
                  asked: bool) -> dict:
        build = host_bodies.hypervisor_detail if detail else host_bodies.hypervisor_summary
        return host_bodies.with_servers(build(node, self.version), servers or [], self.version,
                                        asked)

    def node(self, node_id: str) -> ComputeNode:
        if self.version.at_least("2.53"):
            if parse_uuid(node_id) is None:
                raise errors.BadRequest(f"Invalid uuid {node_id}")
        elif not node_id.isdigit():
            raise errors.NotFound(f"Hypervisor with ID '{node_id}' could not be found.")
        try:
            return hosts.find_node(node_id)
        except errors.NotFound:
            raise errors.NotFound(f"Hypervisor with ID '{node_id}' could not be found.") from None


class HypervisorList(_HypervisorView):
    detail = False
    query_params = {"GET": ("hypervisor_hostname_pattern", "with_servers", "limit", "marker")}

    def get(self, request: Request) -> Response:
        self.authorize("compute:hypervisors")
        query = request.query_params
        paged = self.version.at_least("2.33")
        limit = params.limit_param(query)
        marker = query.get("marker") if paged else None
        limit = limit if paged else None
        pattern = query.get("hypervisor_hostname_pattern")
        asked = self.version.at_least("2.53") and self.flag("with_servers")
        if pattern is not None and self.version.at_least("2.53"):
            if "limit" in query or marker:
                raise errors.BadRequest("Paging over hypervisors with the "
                                        "hypervisor_hostname_pattern query parameter is not "
                                        "supported.")
            nodes = hypervisors.matching(pattern)
            paged = False
        else:
            nodes = hypervisors.page(limit=limit, marker=marker,
                                     by_uuid=self.version.at_least("2.53"))
        servers = hypervisors.servers_by_host([n.host for n in nodes]) if asked else {}
        body: dict = {"hypervisors": [self.node_body(n, self.detail, servers.get(n.host), asked)
                                      for n in nodes]}
        if paged:
            path = "os-hypervisors/detail" if self.detail else "os-hypervisors"
            links = params.next_link(self.compute_url(path), body["hypervisors"], limit,
                                     lambda h: h["id"])
            if links:
                body["hypervisors_links"] = links
        return Response(body)


class HypervisorDetailList(HypervisorList):
    detail = True


class HypervisorItem(_HypervisorView):
    query_params = {"GET": ("with_servers",)}

    def get(self, request: Request, node_id: str) -> Response:
        self.authorize("compute:hypervisors")
        node = self.node(node_id)
        asked = self.version.at_least("2.53") and self.flag("with_servers")
        servers = hypervisors.servers_by_host([node.host])[node.host] if asked else []
        return Response({"hypervisor": self.node_body(node, True, servers, asked)})


class HypervisorUptime(_HypervisorView):
    def get(self, request: Request, node_id: str) -> Response:
        self.authorize("compute:hypervisors")
        if self.version.at_least("2.88"):
            raise errors.NotFound("The resource could not be found.")
        node = self.node(node_id)
        uptime = hypervisors.uptime_line(node)
        if uptime is None:
            # Nova's answer for a host whose driver cannot tell its uptime: a host that has not
            # reported its boot time and load yet (an agent older than contract 1.5).
            raise FeatureNotSupported("Feature not supported: hypervisor uptime")
        body = host_bodies.hypervisor_summary(node, self.version)
        body["uptime"] = uptime
        return Response({"hypervisor": body})


class HypervisorStatistics(ComputeView):
    def get(self, request: Request) -> Response:
        self.authorize("compute:hypervisors")
        if self.version.at_least("2.88"):
            raise errors.NotFound("The resource could not be found.")
        return Response({"hypervisor_statistics": hosts.statistics()})


class HypervisorSearch(_HypervisorView):
    """Below 2.53: the hypervisors whose hostname contains the pattern, with (/servers) or
    without (/search) their servers."""

    with_servers = False

    def get(self, request: Request, pattern: str) -> Response:
        self.authorize("compute:hypervisors")
        if self.version.at_least("2.53"):
            raise errors.NotFound("The resource could not be found.")
        nodes = hypervisors.matching(pattern)
        servers = (hypervisors.servers_by_host([n.host for n in nodes])
                   if self.with_servers else {})
        return Response({"hypervisors": [
            self.node_body(n, False, servers.get(n.host), False) for n in nodes]})


class HypervisorServers(HypervisorSearch):
    with_servers = True


urlpatterns = [
    path("/os-services", ServiceList.as_view()),
    path("/os-services/<str:service_id>", ServiceItem.as_view()),
    path("/os-hypervisors", HypervisorList.as_view()),
    path("/os-hypervisors/detail", HypervisorDetailList.as_view()),
    path("/os-hypervisors/statistics", HypervisorStatistics.as_view()),
    path("/os-hypervisors/<str:node_id>", HypervisorItem.as_view()),
    path("/os-hypervisors/<str:node_id>/uptime", HypervisorUptime.as_view()),
    path("/os-hypervisors/<str:pattern>/search", HypervisorSearch.as_view()),
    path("/os-hypervisors/<str:pattern>/servers", HypervisorServers.as_view()),
]
