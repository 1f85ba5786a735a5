"""The service catalog: regions, services and endpoints (Keystone's /v3/regions, /v3/services,
/v3/endpoints), and the catalog a token carries, built from them.

Every authenticated user may read them; only admins change them. The catalog lists each enabled
service that has an enabled endpoint, with those endpoints. An endpoint's URL is absolute, or a
path ("/compute/v2.1") put under the public URL when the catalog is shown (KUMO_PUBLIC_URL, else
the request's own origin): bootstrap's endpoints are paths, so a cloud reached under another name
hands out URLs under that name, as it always did.

A catalog with no service at all (a database bootstrap has not run on yet, or one emptied) gets
Kumo's four services on first use (`ensure_default_catalog`, which bootstrap runs too): a token
without an identity or compute endpoint would leave every client stranded.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError, QuerySet

from cloud import errors

from .models import INTERFACES, Endpoint, Region, Service, hex_id

# (type, name, path under the origin): Kumo's own services, one origin for all.
DEFAULT_SERVICES = [
    ("identity", "keystone", "/identity"),
    ("compute", "nova", "/compute/v2.1"),
    ("image", "glance", "/image"),
    ("network", "neutron", "/network"),
    # Block storage (issue 17), under both of Cinder's types: openstacksdk and the openstack
    # client look for block-storage, Tempest for volumev3. The project id is filled in per token.
    ("block-storage", "cinder", "/volume/v3/$(project_id)s"),
    ("volumev3", "cinderv3", "/volume/v3/$(project_id)s"),
    # EC2's Query API (issue 18): boto3 and the AWS CLI take this URL as their endpoint.
    ("ec2", "ec2", "/ec2"),
]
# Services that came after the first four: bootstrap adds each to a catalog that has none of its
# type (an operator's other edits stay).
ADDED_SERVICES = ("block-storage", "volumev3", "ec2")
_PROJECT_TEMPLATES = ("$(project_id)s", "%(project_id)s", "$(tenant_id)s", "%(tenant_id)s")
_UNSET: Any = object()


def resolve(url: str, base_url: str) -> str:
    """An endpoint's URL as clients see it: a path goes under `base_url`."""
    return base_url + url if url.startswith("/") else url


def ensure_default_catalog() -> list[str]:
    """Create the default region, and Kumo's services with a public, internal and admin endpoint
    each, if there is no service at all; what it created."""
    created: list[str] = []
    if Service.objects.exists():
        return created
    region_id = settings.KUMO_REGION
    with transaction.atomic():
        region, new = Region.objects.get_or_create(id=region_id)
        if new:
            created.append(f"region {region_id}")
        # Two first uses at once: the region's row lock lets one of them fill the catalog.
        Region.objects.select_for_update().filter(pk=region.pk).first()
        if Service.objects.exists():
            return created
        for service_type, name, path in DEFAULT_SERVICES:
            service = Service.objects.create(type=service_type, name=name)
            for interface in INTERFACES:
                Endpoint.objects.create(service=service, interface=interface, region=region,
                                        url=path)
            created.append(f"service {name}")
    return created


def ensure_added_services() -> list[str]:
    """The services of ADDED_SERVICES a catalog made before them lacks, with their endpoints."""
    created: list[str] = []
    region = Region.objects.filter(pk=settings.KUMO_REGION).first()
    if region is None:
        return created
    with transaction.atomic():
        Region.objects.select_for_update().filter(pk=region.pk).first()
        for service_type, name, path in DEFAULT_SERVICES:
            if service_type not in ADDED_SERVICES or Service.objects.filter(
                    type=service_type).exists():
                continue
            service = Service.objects.create(type=service_type, name=name)
            for interface in INTERFACES:
                Endpoint.objects.create(service=service, interface=interface, region=region,
                                        url=path)
            created.append(f"service {name}")
    return created


def with_project(url: str, project_id: str | None) -> str:
    """Keystone's endpoint templates: $(project_id)s (or %(tenant_id)s…) is the token's project."""
    for template in _PROJECT_TEMPLATES:
        if template in url:
            url = url.replace(template, project_id or "")
    return url


def catalog(base_url: str, project_id: str | None = None) -> list[dict]:
    """The catalog a token carries (scoped to `project_id`, which endpoint templates name)."""
    ensure_default_catalog()
    endpoints = (
        Endpoint.objects.filter(enabled=True, service__enabled=True)
        .select_related("service")
        .order_by("service__type", "service__name", "service_id", "interface", "id")
    )
    entries: dict[str, dict] = {}
    for endpoint in endpoints:
        service = endpoint.service
        entry = entries.setdefault(service.id, {
            "type": service.type, "name": service.name, "id": service.id, "endpoints": []})
        entry["endpoints"].append({
            "id": endpoint.id,
            "interface": endpoint.interface,
            "region": endpoint.region_id,
            "region_id": endpoint.region_id,
            "url": with_project(resolve(endpoint.url, base_url), project_id),
        })
    return list(entries.values())


# --- regions


def list_regions(*, parent_region_id: str | None = None) -> QuerySet[Region]:
    regions = Region.objects.all()
    if parent_region_id is not None:
        regions = regions.filter(parent_id=parent_region_id)
    return regions.order_by("id")


def get_region(region_id: str) -> Region:
    region = Region.objects.filter(pk=region_id).first()
    if region is None:
        raise errors.NotFound(f"Could not find region: {region_id}.")
    return region


def _parent(parent_id: str | None, child_id: str | None = None) -> Region | None:
    if parent_id is None:
        return None
    parent = Region.objects.filter(pk=parent_id).first()
    if parent is None:
        raise errors.BadRequest(f"Parent region {parent_id} does not exist.")
    # A region may not become its own ancestor.
    ancestor: Region | None = parent
    while ancestor is not None:
        if ancestor.pk == child_id:
            raise errors.BadRequest("A region cannot be its own ancestor.")
        ancestor = ancestor.parent
    return parent


def create_region(
    *, region_id: str | None = None, description: str | None = None,
    parent_region_id: str | None = None,
) -> Region:
    region_id = region_id or hex_id()
    parent = _parent(parent_region_id)
    try:
        with transaction.atomic():
            return Region.objects.create(id=region_id, description=description or "",
                                         parent=parent)
    except IntegrityError:
        raise errors.Conflict(f"Duplicate ID, {region_id}.") from None


def update_region(
    region_id: str, *, description: str | None = _UNSET, parent_region_id: str | None = _UNSET
) -> Region:
    region = get_region(region_id)
    if description is not _UNSET:
        region.description = description or ""
    if parent_region_id is not _UNSET:
        region.parent = _parent(parent_region_id, region.pk)
    region.save()
    return region


def delete_region(region_id: str) -> None:
    region = get_region(region_id)
    try:
        with transaction.atomic():
            region.delete()
    except ProtectedError:
        raise errors.Conflict(
            f"Region {region_id} still has child regions or endpoints; delete those first."
        ) from None


# --- services


def list_services(*, type: str | None = None, name: str | None = None) -> QuerySet[Service]:
    services = Service.objects.all()
    if type is not None:
        services = services.filter(type=type)
    if name is not None:
        services = services.filter(name=name)
    return services


def get_service(service_id: str) -> Service:
    service = Service.objects.filter(pk=service_id).first()
    if service is None:
        raise errors.NotFound(f"Could not find service: {service_id}.")
    return service


def create_service(
    *, type: str, name: str | None = None, description: str | None = None, enabled: bool = True
) -> Service:
    return Service.objects.create(type=type, name=name or "", description=description or "",
                                  enabled=enabled)


def update_service(
    service_id: str, *, type: str = _UNSET, name: str | None = _UNSET,
    description: str | None = _UNSET, enabled: bool = _UNSET,
) -> Service:
    service = get_service(service_id)
    for field, value in (("type", type), ("name", name), ("description", description),
                         ("enabled", enabled)):
        if value is not _UNSET:
            setattr(service, field, value if value is not None else "")
    service.save()
    return service


def delete_service(service_id: str) -> None:
    """The service and its endpoints."""
    get_service(service_id).delete()


# --- endpoints


def list_endpoints(
    *, interface: str | None = None, service_id: str | None = None,
    region_id: str | None = None,
) -> QuerySet[Endpoint]:
    endpoints = Endpoint.objects.select_related("service")
    if interface is not None:
        endpoints = endpoints.filter(interface=interface)
    if service_id is not None:
        endpoints = endpoints.filter(service_id=service_id)
    if region_id is not None:
        endpoints = endpoints.filter(region_id=region_id)
    return endpoints


def get_endpoint(endpoint_id: str) -> Endpoint:
    endpoint = Endpoint.objects.filter(pk=endpoint_id).first()
    if endpoint is None:
        raise errors.NotFound(f"Could not find endpoint: {endpoint_id}.")
    return endpoint


def _interface(value: str) -> str:
    if value not in INTERFACES:
        raise errors.BadRequest(f"Invalid interface {value!r}: use one of {', '.join(INTERFACES)}.")
    return value


def _service_ref(service_id: str) -> Service:
    service = Service.objects.filter(pk=service_id).first()
    if service is None:
        raise errors.BadRequest(f"Service {service_id} does not exist.")
    return service


def _region_ref(region_id: str | None) -> Region | None:
    if region_id is None:
        return None
    region = Region.objects.filter(pk=region_id).first()
    if region is None:
        raise errors.BadRequest(f"Region {region_id} does not exist.")
    return region


def _url(value: str) -> str:
    if not value.startswith(("http://", "https://", "/")):
        raise errors.BadRequest(f"Invalid endpoint URL {value!r}: an http(s) URL or a path.")
    return value


def create_endpoint(
    *, service_id: str, interface: str, url: str, region_id: str | None = None,
    enabled: bool = True,
) -> Endpoint:
    return Endpoint.objects.create(
        service=_service_ref(service_id), interface=_interface(interface), url=_url(url),
        region=_region_ref(region_id), enabled=enabled,
    )


def update_endpoint(
    endpoint_id: str, *, service_id: str = _UNSET, interface: str = _UNSET, url: str = _UNSET,
    region_id: str | None = _UNSET, enabled: bool = _UNSET,
) -> Endpoint:
    endpoint = get_endpoint(endpoint_id)
    if service_id is not _UNSET:
        endpoint.service = _service_ref(service_id)
    if interface is not _UNSET:
        endpoint.interface = _interface(interface)
    if url is not _UNSET:
        endpoint.url = _url(url)
    if region_id is not _UNSET:
        endpoint.region = _region_ref(region_id)
    if enabled is not _UNSET:
        endpoint.enabled = enabled
    endpoint.save()
    return endpoint


def delete_endpoint(endpoint_id: str) -> None:
    get_endpoint(endpoint_id).delete()
