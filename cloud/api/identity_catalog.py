"""Keystone v3 regions, services and endpoints (cloud.identity.catalog): read by every
authenticated user, changed by admins."""

from __future__ import annotations

from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response

from cloud.identity import catalog
from cloud.identity.models import INTERFACES, Endpoint, Region, Service

from .identity_admin import NULLABLE_TEXT, IdentityAdminView, envelope, pick

_STRING = {"type": "string", "minLength": 1, "maxLength": 255}
_NULLABLE_ID = {"type": ["string", "null"], "maxLength": 255}

_REGION_FIELDS = {
    "id": _STRING,
    "description": NULLABLE_TEXT,
    "parent_region_id": _NULLABLE_ID,
}
_REGION_CREATE = {"type": "object", "properties": {
    "region": {"type": "object", "properties": _REGION_FIELDS}}}
_REGION_UPDATE = envelope("region", _REGION_FIELDS)

_SERVICE_FIELDS = {
    "type": _STRING,
    "name": {"type": ["string", "null"], "maxLength": 255},
    "description": NULLABLE_TEXT,
    "enabled": {"type": "boolean"},
}
_SERVICE_CREATE = envelope("service", _SERVICE_FIELDS, ("type",))
_SERVICE_UPDATE = envelope("service", _SERVICE_FIELDS)

_ENDPOINT_FIELDS = {
    "service_id": _STRING,
    "interface": {"enum": INTERFACES},
    "url": {"type": "string", "minLength": 1, "maxLength": 1024},
    "region_id": _NULLABLE_ID,
    # Keystone's older name for region_id.
    "region": _NULLABLE_ID,
    "enabled": {"type": "boolean"},
}
_ENDPOINT_CREATE = envelope("endpoint", _ENDPOINT_FIELDS, ("service_id", "interface", "url"))
_ENDPOINT_UPDATE = envelope("endpoint", _ENDPOINT_FIELDS)


class CatalogView(IdentityAdminView):
    def region_body(self, region: Region) -> dict:
        return {
            "id": region.id,
            "description": region.description,
            "parent_region_id": region.parent_id,
            "links": {"self": self.v3_url("regions", region.id)},
        }

    def service_body(self, service: Service) -> dict:
        return {
            "id": service.id,
            "type": service.type,
            "name": service.name,
            "description": service.description,
            "enabled": service.enabled,
            "links": {"self": self.v3_url("services", service.id)},
        }

    def endpoint_body(self, endpoint: Endpoint) -> dict:
        return {
            "id": endpoint.id,
            "service_id": endpoint.service_id,
            "interface": endpoint.interface,
            "region": endpoint.region_id,
            "region_id": endpoint.region_id,
            "url": catalog.resolve(endpoint.url, self.base_url()),
            "enabled": endpoint.enabled,
            "links": {"self": self.v3_url("endpoints", endpoint.id)},
        }


def _region_args(data: dict) -> dict:
    args = {}
    if "description" in data:
        args["description"] = data["description"]
    if "parent_region_id" in data:
        args["parent_region_id"] = data["parent_region_id"]
    return args


class RegionList(CatalogView):
    body_schemas = {"POST": _REGION_CREATE}
    query_params = {"GET": ("parent_region_id",)}

    def get(self, request: Request) -> Response:
        self.authorize("identity:regions:list")
        regions = catalog.list_regions(parent_region_id=self.param("parent_region_id"))
        return self.list_response("regions", [self.region_body(r) for r in regions])

    def post(self, request: Request) -> Response:
        self.authorize("identity:regions:create")
        data = self.valid_body().get("region") or {}
        region = catalog.create_region(region_id=data.get("id"), **_region_args(data))
        return Response({"region": self.region_body(region)}, status=201)


class RegionDetail(CatalogView):
    body_schemas = {"PUT": _REGION_CREATE, "PATCH": _REGION_UPDATE}

    def get(self, request: Request, region_id: str) -> Response:
        self.authorize("identity:regions:show")
        return Response({"region": self.region_body(catalog.get_region(region_id))})

    def put(self, request: Request, region_id: str) -> Response:
        """Create a region with the id the path names."""
        self.authorize("identity:regions:create")
        data = self.valid_body().get("region") or {}
        region = catalog.create_region(region_id=region_id, **_region_args(data))
        return Response({"region": self.region_body(region)}, status=201)

    def patch(self, request: Request, region_id: str) -> Response:
        self.authorize("identity:regions:update")
        data = self.valid_body("region")
        region = catalog.update_region(region_id, **_region_args(data))
        return Response({"region": self.region_body(region)})

    def delete(self, request: Request, region_id: str) -> Response:
        self.authorize("identity:regions:delete")
        catalog.delete_region(region_id)
        return Response(status=204)


class ServiceList(CatalogView):
    body_schemas = {"POST": _SERVICE_CREATE}
    query_params = {"GET": ("type", "name")}

    def get(self, request: Request) -> Response:
        self.authorize("identity:services:list")
        services = catalog.list_services(type=self.param("type"), name=self.param("name"))
        return self.list_response("services", [self.service_body(s) for s in services])

    def post(self, request: Request) -> Response:
        self.authorize("identity:services:create")
        data = self.valid_body("service")
        service = catalog.create_service(**pick(data, "type", "name", "description", "enabled"))
        return Response({"service": self.service_body(service)}, status=201)


class ServiceDetail(CatalogView):
    body_schemas = {"PATCH": _SERVICE_UPDATE}

    def get(self, request: Request, service_id: str) -> Response:
        self.authorize("identity:services:show")
        return Response({"service": self.service_body(catalog.get_service(service_id))})

    def patch(self, request: Request, service_id: str) -> Response:
        self.authorize("identity:services:update")
        data = self.valid_body("service")
        service = catalog.update_service(
            service_id, **pick(data, "type", "name", "description", "enabled")
        )
        return Response({"service": self.service_body(service)})

    def delete(self, request: Request, service_id: str) -> Response:
        self.authorize("identity:services:delete")
        catalog.delete_service(service_id)
        return Response(status=204)


def _endpoint_args(data: dict) -> dict:
    args = pick(data, "service_id", "interface", "url", "enabled")
    if "region_id" in data or "region" in data:
        args["region_id"] = data.get("region_id", data.get("region"))
    return args


class EndpointList(CatalogView):
    body_schemas = {"POST": _ENDPOINT_CREATE}
    query_params = {"GET": ("interface", "service_id", "region_id")}

    def get(self, request: Request) -> Response:
        self.authorize("identity:endpoints:list")
        endpoints = catalog.list_endpoints(
            interface=self.param("interface"), service_id=self.param("service_id"),
            region_id=self.param("region_id"),
        )
        return self.list_response("endpoints", [self.endpoint_body(e) for e in endpoints])

    def post(self, request: Request) -> Response:
        self.authorize("identity:endpoints:create")
        endpoint = catalog.create_endpoint(**_endpoint_args(self.valid_body("endpoint")))
        return Response({"endpoint": self.endpoint_body(endpoint)}, status=201)


class EndpointDetail(CatalogView):
    body_schemas = {"PATCH": _ENDPOINT_UPDATE}

    def get(self, request: Request, endpoint_id: str) -> Response:
        self.authorize("identity:endpoints:show")
        return Response({"endpoint": self.endpoint_body(catalog.get_endpoint(endpoint_id))})

    def patch(self, request: Request, endpoint_id: str) -> Response:
        self.authorize("identity:endpoints:update")
        data = self.valid_body("endpoint")
        endpoint = catalog.update_endpoint(endpoint_id, **_endpoint_args(data))
        return Response({"endpoint": self.endpoint_body(endpoint)})

    def delete(self, request: Request, endpoint_id: str) -> Response:
        self.authorize("identity:endpoints:delete")
        catalog.delete_endpoint(endpoint_id)
        return Response(status=204)


# Paths relative to /identity, joined into cloud/api/urls.py's identity_patterns.
urlpatterns = [
    path("/v3/regions", RegionList.as_view()),
    path("/v3/regions/<str:region_id>", RegionDetail.as_view()),
    path("/v3/services", ServiceList.as_view()),
    path("/v3/services/<str:service_id>", ServiceDetail.as_view()),
    path("/v3/endpoints", EndpointList.as_view()),
    path("/v3/endpoints/<str:endpoint_id>", EndpointDetail.as_view()),
]
