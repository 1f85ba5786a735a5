"""A server's ports, as os-interface lists them: the network API's ports whose device is the
server."""

from __future__ import annotations

from cloud import errors
from cloud.ids import canonical_uuid
from cloud.network.models import Port

from .models import Instance


def ports_of(instance: Instance) -> list[Port]:
    return list(Port.objects.filter(device_id=str(instance.uuid)).order_by("created_at", "id"))


def port_of(instance: Instance, port_id: str) -> Port:
    """One port of the server; 404 for a port that is missing or belongs elsewhere."""
    uuid = canonical_uuid(port_id)
    port = Port.objects.filter(pk=uuid).first() if uuid else None
    if port is None:
        raise errors.NotFound(f"Port {port_id} could not be found.")
    if port.device_id != str(instance.uuid):
        raise errors.NotFound(
            f"Instance {instance.uuid} does not have a port with id {port_id}")
    return port
