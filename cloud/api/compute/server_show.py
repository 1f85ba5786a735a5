"""GET /servers/{id} in one SQL statement: the server's row and everything its body adds (ports with
their networks and floating IPs, its host's zone and service, tags, group, volumes, latest fault,
image properties), as the list reads them for a page (bodies.ServerContext) but for one server.

A show is what clients poll while a server builds (two or three per boot in bench/boot_bench.py,
every 50 ms). Through the ORM it took four to seven queries, each compiled afresh: py-spy put a
fifth of the web process's samples in compiling them and two fifths in psycopg's send and wait.
Here the text is fixed (written once per process) and the answer is one round trip. The values
land in the same ServerRow and ServerContext the list fills, so one body builder serves both and
their shapes cannot drift; tests/unit/api/test_server_show_sql.py compares this path's bodies with
the ORM path's (SQLite, which the laptop demo uses, keeps the ORM path).

The lookup is get_server's: a deleted server, and another project's unless admin, is not found.
"""

from __future__ import annotations

import json
from typing import Any

from django.db import connection

from cloud.compute import hosts, states
from cloud.compute.models import COMPUTE_BINARY, InstanceFault, Service
from cloud.compute.server_rows import _JSON, _PLAIN, _TIMES, ServerRow
from cloud.identity.context import RequestContext
from cloud.ids import canonical_uuid

from .bodies import PortAddresses, ServerContext

_UTC_TEXT = "to_char(i.{0} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US')"

# Ports in ports_of_servers' order (the port, then its floating IPs, each by creation).
_SQL = f"""
SELECT i.uuid::text, {", ".join(f"i.{c}" for c in _PLAIN)},
  {", ".join(f"i.{c}::text" for c in _JSON)},
  {", ".join(_UTC_TEXT.format(c) for c in _TIMES)}, i.user_data,
  (SELECT json_agg(json_build_array(p.id, n.name, p.mac_address, p.fixed_ips,
                                    f.floating_ip_address, f.fixed_ip_address)
                   ORDER BY p.created_at, p.id, f.created_at, f.id)::text
     FROM network_port p JOIN network_network n ON n.id = p.network_id
     LEFT JOIN network_floatingip f ON f.port_id = p.id
    WHERE p.device_id = i.uuid::text),
  (SELECT array_agg(t.tag ORDER BY t.tag) FROM compute_instancetag t
    WHERE t.instance_id = i.uuid),
  (SELECT m.group_id::text FROM compute_servergroupmember m WHERE m.instance_id = i.uuid),
  (SELECT json_agg(json_build_array(b.volume_id::text, b.delete_on_termination)
                   ORDER BY b.id)::text
     FROM compute_blockdevicemapping b
    WHERE b.instance_id = i.uuid AND b.volume_id IS NOT NULL),
  (SELECT a.availability_zone FROM compute_aggregatehost ah
     JOIN compute_aggregate a ON a.id = ah.aggregate_id
    WHERE ah.host = i.host AND a.availability_zone IS NOT NULL LIMIT 1),
  (SELECT im.properties::text FROM images_image im
    WHERE im.id = CASE WHEN i.image_ref ~ %(uuid_like)s THEN i.image_ref::uuid END),
  s.forced_down, s.disabled, s.last_seen_up,
  flt.code, flt.created_at, flt.message, flt.details
FROM compute_instance i
LEFT JOIN LATERAL (SELECT forced_down, disabled, last_seen_up FROM compute_service
                    WHERE host = i.host AND "binary" = %(compute)s LIMIT 1) s ON true
LEFT JOIN LATERAL (SELECT code, created_at, message, details FROM compute_instancefault
                    WHERE instance_id = i.uuid ORDER BY created_at DESC, id DESC LIMIT 1) flt
       ON i.vm_state IN (%(error)s, %(deleted)s)
WHERE i.uuid = %(uuid)s AND NOT i.deleted"""
_SQL_OWN = _SQL + " AND i.project_id = %(project)s"

_ROW = 1 + len(_PLAIN) + len(_JSON) + len(_TIMES) + 1
_UUID_LIKE = "^[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}$"


def available() -> bool:
    """Whether this database runs the one-statement show (PostgreSQL)."""
    return connection.vendor == "postgresql"


def read(ctx: RequestContext, server_id: str) -> tuple[ServerRow, ServerContext] | None:
    """The server as its body needs it, or None when the caller cannot see it (or no such
    server). The page's host_status holds what the caller may see (see ServerContext)."""
    uuid = canonical_uuid(server_id)
    if uuid is None:
        return None
    params = {"uuid": uuid, "project": ctx.project_id, "compute": COMPUTE_BINARY,
              "error": states.ERROR, "deleted": states.DELETED, "uuid_like": _UUID_LIKE}
    with connection.cursor() as cursor:
        cursor.execute(_SQL if ctx.is_admin else _SQL_OWN, params)
        found = cursor.fetchone()
    if found is None:
        return None
    values: list[Any] = list(found[:_ROW])
    first_json = 1 + len(_PLAIN)
    for n in range(first_json, first_json + len(_JSON)):
        values[n] = json.loads(values[n])
    row = ServerRow(*values)
    (ports_json, tags, group, volumes_json, zone, properties_json, forced_down, disabled,
     last_seen_up, fault_code, fault_created, fault_message, fault_details) = found[_ROW:]

    ports: list[PortAddresses] = []
    last_id = None
    for port_id, network, mac, fixed_ips, floating, mapped in json.loads(ports_json or "[]"):
        if port_id != last_id:
            last_id = port_id
            port = PortAddresses(network, mac, fixed_ips or [])
            ports.append(port)
        if floating is not None:
            port.floating.append((floating, mapped))
    host_status: dict[str, str] = {}
    if row.host and forced_down is not None:
        status = hosts.host_status(Service(host=row.host, forced_down=forced_down,
                                           disabled=disabled, last_seen_up=last_seen_up))
        if ctx.is_admin or status == hosts.HOST_UNKNOWN:
            host_status[row.host] = status
    faults: dict[str, InstanceFault] = {}
    if fault_code is not None:
        faults[row.uuid] = InstanceFault(code=fault_code, created_at=fault_created,
                                         message=fault_message, details=fault_details)
    image_properties: dict[str, dict] = {}
    if properties_json is not None:
        image_properties[row.image_ref] = json.loads(properties_json) or {}
    page = ServerContext.given(
        ports={row.uuid: ports} if ports else {},
        faults=faults,
        zones={row.host: zone} if row.host and zone is not None else {},
        host_status=host_status,
        tags={row.uuid: tags} if tags else {},
        groups={row.uuid: [group]} if group else {},
        volumes={row.uuid: [(v, d) for v, d in json.loads(volumes_json)]} if volumes_json else {},
        image_properties=image_properties,
    )
    return row, page
