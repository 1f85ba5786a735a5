"""Ports plugged into a running server and out of it (POST and DELETE /servers/{id}/os-interface,
operations "attach_interface" and "detach_interface").

An attach takes a port the caller owns that is bound to nothing, or makes one on a network the
caller may use (with the fixed IP asked for, if any), binds it to the server and asks the host to
plug a NIC in for it; a detach asks the host to unplug it, and the port is released once the host
reports it gone (cloud/conductor/operation_events.py). The host is always sent the whole list of
NICs the server is to have, so a repeated request finds the work done.
"""

from __future__ import annotations

from django.db import transaction

from cloud import errors, rpc
from cloud.identity.context import RequestContext
from cloud.ids import canonical_uuid
from cloud.network import dataplane, ipam
from cloud.network.models import Network, Port
from cloud.network.networks import visible_networks
from compute_agent import messages as msg

from . import server_security_groups
from .models import Instance
from .operations import REGISTRY, runs
from .server_ports import port_of
from .spawn import networks_of
from .transitions import begin


def _network(ctx: RequestContext, net_id: str | None) -> Network:
    if net_id is None:
        # As Nova without a network: the one network the project can use, if there is just one.
        own = list(Network.objects.filter(project_id=ctx.project_id, shared=False)[:2])
        candidates = own or list(Network.objects.filter(shared=True)[:2])
        if len(candidates) != 1:
            raise errors.BadRequest(
                "Give a net_id or a port_id: the project does not have exactly one network.")
        return candidates[0]
    uuid = canonical_uuid(net_id)
    network = visible_networks(ctx).filter(pk=uuid).first() if uuid else None
    if network is None:
        raise errors.NotFound(f"Network {net_id} could not be found.")
    return network


def _free_port(ctx: RequestContext, port_id: str) -> Port:
    uuid = canonical_uuid(port_id)
    port = Port.objects.filter(pk=uuid).first() if uuid else None
    if port is None or (not ctx.is_admin and str(port.project_id) != ctx.project_id):
        raise errors.NotFound(f"Port {port_id} could not be found.")
    if port.device_id:
        raise errors.Conflict(f"Port {port.id} is still in use.")
    return port


@runs("attach_interface")
def attach_interface(
    ctx: RequestContext,
    instance: Instance,
    net_id: str | None = None,
    port_id: str | None = None,
    fixed_ip: str | None = None,
) -> Port:
    """Bind a port to the server and have its host plug it in; the port."""
    if port_id and (net_id or fixed_ip):
        raise errors.BadRequest("Give a port_id, or a net_id (with fixed_ips), not both.")
    with transaction.atomic():
        row = begin(ctx, instance, REGISTRY["attach_interface"])
        if port_id:
            port = _free_port(ctx, port_id)
            port.device_id, port.device_owner = str(row.uuid), ipam.DEFAULT_DEVICE_OWNER
            port.save(update_fields=["device_id", "device_owner", "updated_at"])
        else:
            port = ipam.allocate_port(_network(ctx, net_id), project_id=str(row.project_id),
                                      device_id=str(row.uuid), fixed_ip=fixed_ip)
            server_security_groups.apply_to_port(row, port)
        rpc.to_host(row.host, msg.TASK_ATTACH_INTERFACE, msg.InterfaceRequest(
            request_id=ctx.request_id, instance_uuid=str(row.uuid), port_id=str(port.id),
            networks=networks_of(row)))
    return port


@runs("detach_interface")
def detach_interface(ctx: RequestContext, instance: Instance, port_id: str) -> None:
    """Have the server's host unplug one of its ports; the port goes once it is out."""
    port = port_of(instance, port_id)
    with transaction.atomic():
        row = begin(ctx, instance, REGISTRY["detach_interface"])
        rpc.to_host(row.host, msg.TASK_DETACH_INTERFACE, msg.InterfaceRequest(
            request_id=ctx.request_id, instance_uuid=str(row.uuid), port_id=str(port.id),
            networks=[nic for nic in networks_of(row) if nic.port_id != str(port.id)]))


def release_detached(instance_uuid: str, port_id: str) -> None:
    """The host unplugged the port: it is freed (its address with it)."""
    uuid = canonical_uuid(port_id)
    if uuid:
        port = Port.objects.filter(pk=uuid, device_id=str(instance_uuid)).first()
        if port is None:
            return
        groups = [str(g) for g in port.security_groups.values_list("id", flat=True)]
        port.delete()
        dataplane.notify_groups(groups)  # rules naming its groups lose its address


def unbind(instance_uuid: str, port_id: str) -> None:
    """An attach the host could not carry out: the port stays, bound to nothing (a port made for
    the attach as much as one the caller brought; either may be deleted or attached again)."""
    uuid = canonical_uuid(port_id)
    if uuid:
        Port.objects.filter(pk=uuid, device_id=str(instance_uuid)).update(
            device_id="", device_owner="")


# Neutron's port status: ACTIVE once the port is plugged into a running guest (which is when a
# Kumo host reports the NIC in place: there is no separate network agent to say so), DOWN while
# nothing holds it.
PORT_ACTIVE = "ACTIVE"
PORT_DOWN = "DOWN"


def mark_ports(instance_uuid: str, status: str, port_id: str | None = None) -> None:
    """Set the status of the server's ports (or of one of them)."""
    ports = Port.objects.filter(device_id=str(instance_uuid))
    if port_id is not None:
        ports = ports.filter(pk=canonical_uuid(port_id))
    ports.exclude(status=status).update(status=status)
