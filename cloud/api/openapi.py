"""/openapi.json: an OpenAPI 3.1 document of the four APIs, generated from the routes and from what
each view declares (cloud/api/base.py) — its methods, the JSON Schema of each body (the very schema
the view validates with; every step of a microversioned one), the query parameters it reads — and
from its family's error body (cloud/api/error_bodies.py), which every 4xx answer must have.

Success bodies are not described: they change with the microversion key by key, and Tempest's own
schemas check them. The document is what tests/unit/api/test_openapi.py fuzzes with schemathesis.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.urls import URLPattern, URLResolver, get_resolver
from django.views.decorators.http import require_GET

from . import error_bodies
from .base import OpenStackView, PublicView, Schema, Versioned
from .microversion import MAX_VERSION

_STRING: Schema = {"type": "string"}
_COUNT: Schema = {"type": "integer", "minimum": 0}
_FLAG: Schema = {"type": "boolean"}
# Nova and Keystone read a flag given without a value (`?all_tenants`) as true.
_FLAG_OR_EMPTY: Schema = {"anyOf": [_FLAG, {"enum": [""]}]}

# Every query parameter a view may declare, by name. A name declared without a row here fails
# test_openapi.py; a view reads the value itself (cloud/api/compute/params.py and the like).
QUERY_PARAMETERS: dict[str, Schema] = {
    **dict.fromkeys(
        ("name", "status", "image", "flavor", "host", "project_id", "tenant_id", "marker",
         "user_id", "binary", "hypervisor_hostname_pattern", "sort_key", "sort_dir", "is_public",
         "domain_id", "parent_id", "tags", "tags-any", "user.id", "scope.project.id", "role.id",
         "scope.domain.id", "group.id", "scope.system", "scope.OS-INHERIT:inherited_to", "id",
         "description", "network_id", "cidr", "gateway_ip", "device_id", "device_owner",
         "mac_address", "instance_uuid", "migration_type", "source_compute", "hidden"),
        _STRING,
    ),
    **dict.fromkeys(("limit", "offset", "minDisk", "minRam"), _COUNT),
    **dict.fromkeys(
        ("all_tenants", "all_projects", "enabled", "is_domain", "include_names"),
        _FLAG_OR_EMPTY,
    ),
    # The server list reads any value of deleted (an unreadable one lists the live servers), as
    # Nova does: it is no flag to refuse.
    "deleted": _STRING,
    **dict.fromkeys(("shared", "router:external", "admin_state_up", "enable_dhcp"), _FLAG),
    "changes-since": {"type": "string", "format": "date-time"},
    "changes-before": {"type": "string", "format": "date-time"},
    "ip_version": {"type": "integer"},
    "fields": {"type": "array", "items": _STRING},
    # image tasks (Glance)
    "type": _STRING,
    # the identity catalog and role assignments (Keystone)
    **dict.fromkeys(("interface", "service_id", "region_id", "parent_region_id"), _STRING),
    "effective": _FLAG_OR_EMPTY,
    # compute (issue 12): the server-list filters Nova knows, usage, hypervisors, limits
    **dict.fromkeys(
        ("ip", "ip6", "not-tags", "not-tags-any", "locked", "availability_zone", "key_name",
         "config_drive", "created_at", "launched_at", "terminated_at", "power_state",
         "task_state", "vm_state", "progress", "node", "hostname", "reservation_id", "uuid",
         "access_ip_v4", "access_ip_v6", "launch_index", "display_name", "display_description",
         "image_ref", "kernel_id", "ramdisk_id", "root_device_name", "auto_disk_config",
         "locked_by", "soft_deleted", "block_device_mapping", "services", "metadata",
         "system_metadata", "info_cache", "security_groups", "pci_devices", "with_servers",
         "start", "end", "detailed", "reserved"),
        _STRING,
    ),
    # os-hosts (until 2.42): the availability zone listed
    "zone": _STRING,
    # block storage (issue 17): Cinder's list filters, sort, paging and quota usage
    **dict.fromkeys(("sort", "with_count", "usage", "bootable", "size", "volume_type",
                     "volume_id", "cascade", "force", "instance_id", "skip_validation"),
                    _STRING),
    # network (issue 14): Neutron's list filters
    **dict.fromkeys(
        ("provider:network_type", "provider:physical_network", "fixed_ips", "binding:host_id",
         "security_group_id", "direction", "ethertype", "protocol", "remote_ip_prefix",
         "remote_group_id", "floating_ip_address", "floating_network_id", "fixed_ip_address",
         "port_id", "router_id", "agent_type", "topic"),
        _STRING,
    ),
    **dict.fromkeys(("port_security_enabled", "stateful", "alive"), _FLAG),
    "mtu": {"type": "integer"},
    "provider:segmentation_id": {"type": "integer"},
    "port_range_min": {"type": "integer"},
    "port_range_max": {"type": "integer"},
}

_ERRORS: dict[str, Schema] = {
    "ComputeError": {
        "description": "Nova's error: one key naming the error, e.g. itemNotFound.",
        "type": "object",
        "minProperties": 1,
        "maxProperties": 1,
        "additionalProperties": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "integer"}, "message": {"type": "string"}},
        },
    },
    "Error": {
        "description": "Keystone's and Glance's error.",
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "title", "message"],
                "properties": {"code": {"type": "integer"}, "title": {"type": "string"},
                               "message": {"type": "string"}},
            }
        },
    },
    "NeutronError": {
        "description": "Neutron's error.",
        "type": "object",
        "required": ["NeutronError"],
        "properties": {
            "NeutronError": {
                "type": "object",
                "required": ["type", "message", "detail"],
                "properties": {"type": {"type": "string"}, "message": {"type": "string"},
                               "detail": {"type": "string"}},
            }
        },
    },
}
_ERROR_OF_FAMILY = {
    error_bodies.COMPUTE: "ComputeError",
    error_bodies.IDENTITY: "Error",
    error_bodies.IMAGE: "Error",
    error_bodies.NETWORK: "NeutronError",
    error_bodies.VOLUME: "ComputeError",
}
_METHODS = ("get", "post", "put", "patch", "delete")
_MICROVERSION = {
    "name": "OpenStack-API-Version",
    "in": "header",
    "required": False,
    "description": "The compute microversion, e.g. `compute 2.60` or `compute latest` "
                   f"(2.1 to {MAX_VERSION}; 2.1 when absent).",
    "schema": _STRING,
}


def routes() -> Iterator[tuple[str, type[OpenStackView]]]:
    """(OpenAPI path, view class) of every API route; a trailing-slash twin of a route is the
    same document and is left out."""

    def walk(patterns: list, prefix: str) -> Iterator[tuple[str, type[OpenStackView]]]:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern):
                view = getattr(pattern.callback, "view_class", None)
                if (view is not None and issubclass(view, OpenStackView)
                        and error_bodies.family_of("/" + route) and not route.endswith("/")):
                    yield "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route), view

    return walk(get_resolver().url_patterns, "")


def _parameters(path: str, view: type[OpenStackView], method: str) -> list[dict[str, Any]]:
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": _STRING}
        for name in re.findall(r"{(\w+)}", path)
    ]
    for name in view.query_params.get(method, ()):
        parameters.append({"name": name, "in": "query", "required": False,
                           "schema": QUERY_PARAMETERS[name]})
    for name in view.header_params.get(method, ()):
        parameters.append({"name": name, "in": "header", "required": True, "schema": _STRING})
    if view.family == error_bodies.COMPUTE and not issubclass(view, PublicView):
        parameters.append(_MICROVERSION)
    return parameters


def _body(schema: Schema | Versioned) -> dict[str, Any]:
    if isinstance(schema, Versioned):
        steps = schema.schemas()
        schema = steps[0] if len(steps) == 1 else {"anyOf": steps}
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _operation(path: str, view: type[OpenStackView], method: str) -> dict[str, Any]:
    upper = method.upper()
    public = issubclass(view, PublicView) or upper in view.public_methods
    error = {"$ref": f"#/components/schemas/{_ERROR_OF_FAMILY[view.family]}"}
    responses: dict[str, Any] = {
        "2XX": {"description": "Done."},
        "4XX": {"description": "Refused, in the family's error shape.",
                "content": {"application/json": {"schema": error}}},
    }
    if issubclass(view, PublicView):
        # Discovery: a version list answers 300 Multiple Choices in Keystone and Glance.
        responses["300"] = {"description": "The versions to choose from."}
    operation: dict[str, Any] = {
        "operationId": f"{method}{re.sub(r'[^A-Za-z0-9]+', '_', path)}",
        "tags": [view.family],
        "summary": (view.__doc__ or view.__name__).strip().splitlines()[0],
        "parameters": _parameters(path, view, upper),
        "responses": responses,
    }
    if public:
        operation["security"] = []
    if upper in view.body_schemas:
        operation["requestBody"] = _body(view.body_schemas[upper])
    return operation


@functools.cache
def document() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for path, view in routes():
        methods = [m for m in _METHODS if hasattr(view, m) and m in view.http_method_names]
        paths[path] = {m: _operation(path, view, m) for m in methods}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Kumo",
            "version": str(MAX_VERSION),
            "description": "The Keystone v3, Nova v2.1, Glance v2 and Neutron v2.0 subsets Kumo "
                           "serves, each under its prefix on one origin.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": _ERRORS,
            "securitySchemes": {
                "token": {"type": "apiKey", "in": "header", "name": "X-Auth-Token",
                          "description": "A token from POST /identity/v3/auth/tokens "
                                         "(its X-Subject-Token header)."},
            },
        },
        "security": [{"token": []}],
    }


@require_GET
def openapi_json(request: HttpRequest) -> JsonResponse:
    return JsonResponse(document())
