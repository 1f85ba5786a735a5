"""Response bodies for servers and flavors, built for the requested microversion.

Strict clients (Tempest) reject keys a version does not define, so every optional key is added
only at the version that introduced it and dropped at the one that removed it. A server body has
four views, as in Nova: the detail list, show, and the answers to update and rebuild (which below
2.75 leave out the extensions).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC
from functools import lru_cache
from typing import Any

from cloud.compute import (
    availability_zones,
    hosts,
    server_groups,
    server_tags,
    server_volumes,
    states,
)
from cloud.compute.models import COMPUTE_BINARY, Flavor, Instance, InstanceFault, Service
from cloud.compute.server_rows import Among, ServerRow
from cloud.ids import canonical_uuid
from cloud.images.models import Image
from cloud.network.models import Port

from ..microversion import APIVersion

DETAIL, SHOW, UPDATE, REBUILD = "detail", "show", "update", "rebuild"


# isoformat() rather than strftime(): the same text, in a fraction of the time (a list formats
# thousands of them).
def iso(dt) -> str | None:
    if dt is None:
        return None
    return dt.astimezone(UTC).isoformat(timespec="seconds")[:19] + "Z"


def iso_micro(dt) -> str | None:
    if dt is None:
        return None
    return dt.astimezone(UTC).isoformat(timespec="microseconds")[:26]


def _text_seconds(text: str) -> str:
    """A ServerRow's UTC text as iso() shows it."""
    return f"{text[:10]}T{text[11:19]}Z"


def _text_micro(text: str | None) -> str | None:
    """A ServerRow's UTC text as iso_micro() shows it."""
    if text is None or (len(text) == 26 and text[10] == "T"):
        return text
    return f"{text[:10]}T{text[11:19]}.{text[20:26].ljust(6, '0')}"


def links(url: Callable[..., str], *parts: str) -> list[dict]:
    return [
        {"rel": "self", "href": url(*parts)},
        {"rel": "bookmark", "href": url(*parts, bookmark=True)},
    ]


# --- flavors


def flavor_summary(flavor: Flavor, version: APIVersion, url: Callable[..., str]) -> dict:
    body = {"id": flavor.flavorid, "name": flavor.name, "links": links(url, "flavors", flavor.flavorid)}
    if version.at_least("2.55"):
        body["description"] = flavor.description
    return body


def flavor_detail(
    flavor: Flavor, version: APIVersion, url: Callable[..., str], extra_specs: bool = True
) -> dict:
    """2.55 description; 2.61 extra_specs (for whom the policy lets read them); 2.75 swap 0 rather
    than ""; 2.102 without rxtx_factor and OS-FLV-DISABLED:disabled."""
    body = flavor_summary(flavor, version, url)
    body.update(
        {
            "ram": flavor.memory_mb,
            "vcpus": flavor.vcpus,
            "disk": flavor.root_gb,
            "swap": flavor.swap or (0 if version.at_least("2.75") else ""),
            "OS-FLV-EXT-DATA:ephemeral": flavor.ephemeral_gb,
            "os-flavor-access:is_public": flavor.is_public,
        }
    )
    if not version.at_least("2.102"):
        body["OS-FLV-DISABLED:disabled"] = flavor.disabled
        body["rxtx_factor"] = flavor.rxtx_factor
    if version.at_least("2.61") and extra_specs:
        body["extra_specs"] = dict(flavor.extra_specs or {})
    return body


# --- servers

# Nova shows progress only in these statuses, and a fault only in these.
_PROGRESS_STATUSES = frozenset({"ACTIVE", "BUILD", "REBUILD", "RESIZE", "VERIFY_RESIZE",
                                "MIGRATING"})
_FAULT_STATUSES = frozenset({"ERROR", "DELETED"})
# Image properties a server shows from 2.98: the ones Nova's image metadata defines.
_IMAGE_PROPERTY_PREFIXES = ("hw_", "img_", "os_", "traits_")
_IMAGE_PROPERTY_NAMES = frozenset({
    "architecture", "auto_disk_config", "vm_mode", "hypervisor_type", "hypervisor_version_requires",
    "root_device_name", "owner_id", "ipxe_boot", "cache_in_nova", "bittorrent",
})


@dataclass(frozen=True)
class _Shape:
    """Which keys a server body has at one microversion: asked once per version, not per row."""

    image_properties: bool  # 2.98
    flavor_embedded: bool  # 2.47
    extended_attrs: bool  # 2.3
    host_status: bool  # 2.16
    locked: bool  # 2.9
    description: bool  # 2.19
    tags: bool  # 2.26
    trusted_certs: bool  # 2.63
    server_groups: bool  # 2.71
    locked_reason: bool  # 2.73
    full_update: bool  # 2.75
    rebuild_key_name: bool  # 2.54
    rebuild_user_data: bool  # 2.57
    hostname: bool  # 2.90
    pinned_zone: bool  # 2.96
    scheduler_hints: bool  # 2.100


@lru_cache(maxsize=128)
def _shape(version: APIVersion) -> _Shape:
    at = version.at_least
    return _Shape(
        image_properties=at("2.98"), flavor_embedded=at("2.47"), extended_attrs=at("2.3"),
        host_status=at("2.16"), locked=at("2.9"), description=at("2.19"), tags=at("2.26"),
        trusted_certs=at("2.63"), server_groups=at("2.71"), locked_reason=at("2.73"),
        full_update=at("2.75"), rebuild_key_name=at("2.54"), rebuild_user_data=at("2.57"),
        hostname=at("2.90"), pinned_zone=at("2.96"), scheduler_hints=at("2.100"),
    )


class ServerContext:
    """What a page of servers needs besides the rows, fetched in a fixed number of queries, and
    what is the same for every row of the page (worked out once)."""

    def __init__(self, rows: Iterable[ServerRow], is_admin: bool,
                 version: APIVersion | None = None):
        rows = list(rows)
        uuids = [r.uuid for r in rows]
        self.ports = ports_of_servers(uuids)
        self.faults: dict[str, InstanceFault] = {}
        errored = [r.uuid for r in rows if r.vm_state in (states.ERROR, states.DELETED)]
        if errored:
            for fault in InstanceFault.objects.filter(instance_id__in=errored).order_by(
                "instance_id", "-created_at", "-id"
            ):
                self.faults.setdefault(str(fault.instance_id), fault)
        host_names = {r.host for r in rows if r.host}
        # A placed server is in its host's zone, whatever it asked for: one query per page.
        self.zones = availability_zones.host_zones(host_names)
        # Admins see every host_status; others only UNKNOWN (Nova's "unknown-only" rule): that
        # their server's host stopped answering, without learning anything else about hosts.
        self.host_status: dict[str, str] = {}
        if host_names:
            for service in Service.objects.filter(host__in=host_names, binary=COMPUTE_BINARY):
                status = hosts.host_status(service)
                if is_admin or status == hosts.HOST_UNKNOWN:
                    self.host_status[service.host] = status
        version = version or APIVersion(2, 1)
        self.tags = server_tags.tags_by_server(uuids) if version.at_least("2.26") else {}
        self.groups: dict[str, list[str]] = {}
        if version.at_least("2.71") and uuids:
            self.groups = server_groups.groups_of_servers(uuids)
        # Their volumes (os-extended-volumes:volumes_attached): one query a page.
        self.volumes = server_volumes.volumes_of_servers(uuids)
        self.image_properties: dict[str, dict[str, str | None]] = {}
        if version.at_least("2.98"):
            # Refs are stored as given: one that spells no uuid (an import from another image
            # service) names no image here, and must not reach the uuid column's lookup.
            refs = {ref: uid for ref in {r.image_ref for r in rows if r.image_ref}
                    if (uid := canonical_uuid(ref)) is not None}
            found = dict(Image.objects.filter(pk__in=set(refs.values())).values_list(
                "id", "properties"))
            by_id = {str(image_id): properties for image_id, properties in found.items()}
            for ref, uid in refs.items():
                if uid in by_id:
                    self.image_properties[ref] = _standard_properties(by_id[uid] or {})
        self._host_ids: dict[tuple[str, str], str] = {}
        self._urls: tuple[Callable[..., str], _Urls] | None = None

    @classmethod
    def given(cls, *, ports: dict[str, list[PortAddresses]], faults: dict[str, InstanceFault],
              zones: dict[str, str], host_status: dict[str, str], tags: dict[str, list[str]],
              groups: dict[str, list[str]], volumes: dict[str, list[tuple[str, bool]]],
              image_properties: dict[str, dict]) -> ServerContext:
        """The same, from values already read (a show reads them with its row in one statement:
        server_show.py); image properties as the image holds them."""
        page = cls.__new__(cls)
        page.ports, page.faults, page.zones, page.host_status = ports, faults, zones, host_status
        page.tags, page.groups, page.volumes = tags, groups, volumes
        page.image_properties = {ref: _standard_properties(properties)
                                 for ref, properties in image_properties.items()}
        page._host_ids = {}
        page._urls = None
        return page

    def host_id(self, row: ServerRow) -> str:
        # Nova's hostId: a per-project hash of the host, so tenants can tell co-location apart
        # without learning host names. A page has a handful of (project, host) pairs.
        if not row.host:
            return ""
        key = (row.project_id, row.host)
        found = self._host_ids.get(key)
        if found is None:
            found = self._host_ids[key] = hashlib.sha224(
                (row.project_id + row.host).encode()).hexdigest()
        return found

    def urls(self, url: Callable[..., str]) -> _Urls:
        if self._urls is None or self._urls[0] != url:
            self._urls = (url, _Urls(url))
        return self._urls[1]


class _Urls:
    """The prefixes of a page's links: url(kind, id) is the prefix, "/" and the id."""

    def __init__(self, url: Callable[..., str]):
        self.servers = url("servers") + "/"
        self.servers_bookmark = url("servers", bookmark=True) + "/"
        self.images_bookmark = url("images", bookmark=True) + "/"
        self.flavors_bookmark = url("flavors", bookmark=True) + "/"

    def server_links(self, uuid: str) -> list[dict]:
        return [{"rel": "self", "href": self.servers + uuid},
                {"rel": "bookmark", "href": self.servers_bookmark + uuid}]


def _standard_properties(properties: dict) -> dict[str, str | None]:
    return {
        key: None if value is None else str(value)[:255]
        for key, value in properties.items()
        if key.startswith(_IMAGE_PROPERTY_PREFIXES) or key in _IMAGE_PROPERTY_NAMES
    }


@dataclass
class PortAddresses:
    """What a server's addresses show of one of its ports."""

    network: str
    mac_address: str
    fixed_ips: list[dict]
    # (floating address, the fixed address it maps to), in the order they were made
    floating: list[tuple[str, str | None]] = field(default_factory=list)


def ports_of_servers(uuids: list[str]) -> dict[str, list[PortAddresses]]:
    """server uuid → its ports' addresses, for a page of servers in one query (the ports joined
    with their networks and floating IPs: columns, not model objects)."""
    found: dict[str, list[PortAddresses]] = {}
    if not uuids:
        return found
    rows = Port.objects.filter(Among("device_id", uuids)).order_by(
        "created_at", "id", "floating_ips__created_at", "floating_ips__id").values_list(
        "id", "device_id", "network__name", "mac_address", "fixed_ips",
        "floating_ips__floating_ip_address", "floating_ips__fixed_ip_address")
    last_id = None
    for port_id, device_id, network, mac, fixed_ips, floating, mapped in rows:
        if port_id != last_id:
            last_id = port_id
            port = PortAddresses(network, mac, fixed_ips or [])
            found.setdefault(device_id, []).append(port)
        if floating is not None:
            port.floating.append((floating, mapped))
    return found


def addresses(ports: list[PortAddresses], extended: bool) -> dict:
    result: dict[str, list] = {}
    for port in ports:
        for fixed in port.fixed_ips:
            entry = {"version": 6 if ":" in fixed["ip_address"] else 4, "addr": fixed["ip_address"]}
            if extended:
                entry["OS-EXT-IPS:type"] = "fixed"
                entry["OS-EXT-IPS-MAC:mac_addr"] = port.mac_address
            result.setdefault(port.network, []).append(entry)
            # As Nova shows them: a floating IP follows the fixed address it maps to.
            for floating, mapped in port.floating:
                if mapped != fixed["ip_address"]:
                    continue
                entry = {"version": 4, "addr": floating}
                if extended:
                    entry["OS-EXT-IPS:type"] = "floating"
                    entry["OS-EXT-IPS-MAC:mac_addr"] = port.mac_address
                result[port.network].append(entry)
    return result


def server_summary(uuid: str, name: str, url: Callable[..., str]) -> dict:
    return {"id": uuid, "name": name, "links": links(url, "servers", uuid)}


def _image(row: ServerRow, shape: _Shape, urls: _Urls, page: ServerContext) -> dict | str:
    if not row.image_ref:
        return ""
    image: dict = {
        "id": row.image_ref,
        "links": [{"rel": "bookmark", "href": urls.images_bookmark + row.image_ref}],
    }
    if shape.image_properties:
        image["properties"] = page.image_properties.get(row.image_ref, {})
    return image


def _flavor(row: ServerRow, shape: _Shape, urls: _Urls) -> dict:
    flavor = row.flavor_snapshot
    if shape.flavor_embedded:
        return {
            "vcpus": flavor.get("vcpus", row.vcpus),
            "ram": flavor.get("ram", row.memory_mb),
            "disk": flavor.get("disk", row.root_gb),
            "ephemeral": flavor.get("ephemeral", row.ephemeral_gb),
            "swap": flavor.get("swap", 0),
            "original_name": flavor.get("name", ""),
            "extra_specs": flavor.get("extra_specs", {}),
        }
    flavor_id = flavor.get("id", "")
    return {
        "id": flavor_id,
        "links": [{"rel": "bookmark", "href": urls.flavors_bookmark + flavor_id}],
    }


def _fault(row: ServerRow, page: ServerContext, is_admin: bool) -> dict | None:
    fault = page.faults.get(row.uuid)
    if fault is None:
        return None
    body = {"code": fault.code, "created": iso(fault.created_at), "message": fault.message}
    if fault.details and (is_admin or fault.code != 500):
        body["details"] = fault.details
    return body


def _base(row: ServerRow, shape: _Shape, urls: _Urls, page: ServerContext, is_admin: bool,
          extended_addresses: bool) -> dict:
    status = "DELETED" if row.deleted else row.status
    ports = page.ports.get(row.uuid)
    body: dict[str, Any] = {
        "id": row.uuid,
        "name": row.display_name,
        "status": status,
        "tenant_id": row.project_id,
        "user_id": row.user_id,
        "metadata": row.metadata,
        "hostId": page.host_id(row),
        "created": _text_seconds(row.created_at),
        "updated": _text_seconds(row.updated_at),
        "links": urls.server_links(row.uuid),
        "image": _image(row, shape, urls, page),
        "flavor": _flavor(row, shape, urls),
        "addresses": addresses(ports, extended=extended_addresses) if ports else {},
        "accessIPv4": row.access_ip_v4,
        "accessIPv6": row.access_ip_v6,
        "OS-DCF:diskConfig": "MANUAL",
    }
    if status in _FAULT_STATUSES:
        fault = _fault(row, page, is_admin)
        if fault is not None:
            body["fault"] = fault
    if status in _PROGRESS_STATUSES:
        body["progress"] = row.progress
    return body


def _add_extensions(body: dict[str, Any], row: ServerRow, shape: _Shape, page: ServerContext,
                    is_admin: bool, user_data: bool) -> None:
    """What the show and list views add to the base body (and update and rebuild from 2.75)."""
    host = row.host
    body["OS-EXT-AZ:availability_zone"] = (availability_zones.zone_of(host, page.zones) if host
                                           else row.availability_zone or "")
    body["config_drive"] = "True" if row.config_drive else ""
    body["key_name"] = row.key_name
    body["OS-SRV-USG:launched_at"] = _text_micro(row.launched_at)
    body["OS-SRV-USG:terminated_at"] = _text_micro(row.terminated_at)
    groups = row.security_groups
    if groups and row.uuid in page.ports:
        body["security_groups"] = [{"name": name} for name in groups]
    if is_admin:
        body["OS-EXT-SRV-ATTR:host"] = host
        body["OS-EXT-SRV-ATTR:instance_name"] = f"instance-{row.uuid}"
        body["OS-EXT-SRV-ATTR:hypervisor_hostname"] = row.node
        if shape.extended_attrs:
            body["OS-EXT-SRV-ATTR:hostname"] = row.hostname
            body["OS-EXT-SRV-ATTR:kernel_id"] = ""
            body["OS-EXT-SRV-ATTR:launch_index"] = row.launch_index
            body["OS-EXT-SRV-ATTR:ramdisk_id"] = ""
            body["OS-EXT-SRV-ATTR:reservation_id"] = row.reservation_id
            body["OS-EXT-SRV-ATTR:root_device_name"] = "/dev/vda"
            if user_data:
                body["OS-EXT-SRV-ATTR:user_data"] = row.user_data
    body["OS-EXT-STS:task_state"] = states.shown_task_state(row.vm_state, row.task_state)
    body["OS-EXT-STS:vm_state"] = row.vm_state
    body["OS-EXT-STS:power_state"] = states.POWER_STATE_CODES.get(row.power_state, 0)
    body["os-extended-volumes:volumes_attached"] = [
        {"id": volume_id, "delete_on_termination": delete} if shape.extended_attrs
        else {"id": volume_id} for volume_id, delete in page.volumes.get(row.uuid, [])]
    if shape.host_status and (is_admin or host in page.host_status):
        body["host_status"] = page.host_status.get(host or "", "")


def shows_user_data(version: APIVersion, is_admin: bool) -> bool:
    """Whether a list's bodies show OS-EXT-SRV-ATTR:user_data (so its rows must read it)."""
    return is_admin and _shape(version).extended_attrs


def server_detail(
    row: ServerRow,
    version: APIVersion,
    url: Callable[..., str],
    page: ServerContext,
    is_admin: bool,
    view: str = SHOW,
) -> dict:
    """The server as one of Nova's views shows it at `version`."""
    shape = _shape(version)
    full = view in (DETAIL, SHOW) or shape.full_update
    uuid = row.uuid
    body = _base(row, shape, page.urls(url), page, is_admin, extended_addresses=full)
    if full:
        _add_extensions(body, row, shape, page, is_admin, user_data=view != REBUILD)
    elif view == REBUILD and shape.rebuild_key_name:
        body["key_name"] = row.key_name
    if shape.locked:
        body["locked"] = row.locked
    if shape.description:
        body["description"] = row.description
    if shape.tags:
        body["tags"] = page.tags.get(uuid, [])
    if shape.trusted_certs:
        body["trusted_image_certificates"] = None  # no Kumo host validates image signatures
    if shape.server_groups and view != DETAIL:
        body["server_groups"] = page.groups.get(uuid, [])
    if shape.locked_reason:
        body["locked_reason"] = row.locked_reason if row.locked else None
    if shape.hostname:
        body["OS-EXT-SRV-ATTR:hostname"] = row.hostname
    if shape.pinned_zone and full:
        body["pinned_availability_zone"] = row.availability_zone
    if shape.scheduler_hints:
        body["scheduler_hints"] = dict(row.scheduler_hints or {})
    if view == REBUILD and shape.rebuild_user_data:
        body["user_data"] = row.user_data
    return body


def server_show(
    instance: Instance, version: APIVersion, url: Callable[..., str], is_admin: bool,
    view: str = SHOW,
) -> dict:
    """One server's body for show, or the answer to an update or a rebuild (Nova's: the show
    body without its extensions below 2.75, the whole of it from there)."""
    row = ServerRow.of(instance)
    page = ServerContext([row], is_admin, version)
    return server_detail(row, version, url, page, is_admin, view=view)
