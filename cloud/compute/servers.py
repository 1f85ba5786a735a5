"""Server operations behind the Compute API. Views parse and shape; these functions decide."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from cloud import errors, events, rpc
from cloud.compute import quotas
from cloud.identity.context import RequestContext
from cloud.identity.models import Project, User
from cloud.ids import canonical_uuid, ref_id
from cloud.images.models import Image
from cloud.images.visibility import visible_image
from cloud.network import dataplane, ipam
from cloud.network.models import FloatingIp, Network, Port
from compute_agent import messages as msg

from . import (
    action_records,
    availability_zones,
    boot_sql,
    boot_volumes,
    claims,
    consoles,
    destinations,
    flavors,
    keypairs,
    server_groups,
    server_security_groups,
    server_tags,
    server_volumes,
    shelving,
    states,
    volume_images,
)
from .action_records import record_action
from .destinations import Destination
from .hosts import host_is_up
from .models import Flavor, Instance, Migration
from .operations import REGISTRY, perform, runs
from .transitions import ensure_unlocked, locked_row, move, refusal, write


@dataclass
class ServerRequest:
    name: str
    image_id: str
    flavor_ref: str
    networks: str | list[dict] = "auto"
    key_name: str | None = None
    user_data: str | None = None
    availability_zone: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    min_count: int = 1
    max_count: int = 1
    description: str | None = None
    access_ip_v4: str = ""
    access_ip_v6: str = ""
    config_drive: bool = False
    scheduler_hints: dict = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    # None: derived from the name (Nova's rule); set from 2.90
    hostname: str | None = None
    # By name (or the default group's id); None: the project's default group
    security_groups: list[str] | None = None
    destination: Destination = field(default_factory=Destination)
    trusted_image_certificates: list[str] | None = None
    # The volumes it boots from or gets (boot_volumes.parse); image_id is "" with a boot volume.
    block_devices: list[boot_volumes.DeviceRequest] = field(default_factory=list)


def find_flavor(flavor_ref: str, ctx: RequestContext | None = None) -> Flavor | None:
    """The flavor a reference names; with `ctx`, only one the caller may use (a private flavor
    needs access for the caller's project, or an admin)."""
    return flavors.usable_flavor(ctx, ref_id(flavor_ref))


def hostname_for(name: str) -> str:
    """An RFC 952/1123 host name derived from a display name, as a guest would get it."""
    host = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    return host[:63].strip("-") or "server"


def _resolve_networks(ctx: RequestContext, networks: str | list[dict]) -> list[dict]:
    """Turn the request's `networks` into [{"network": Network, "port": Port|None, "fixed_ip"}]."""
    if networks == "none":
        return []
    if isinstance(networks, str) or not networks:  # "auto" (the schema allows no other word)
        shared = list(Network.objects.filter(shared=True)[:2])
        own = list(Network.objects.filter(project_id=ctx.project_id, shared=False)[:2])
        candidates = own or shared
        if len(candidates) == 1:
            return [{"network": candidates[0], "port": None, "fixed_ip": None}]
        return []
    resolved = []
    for entry in networks:
        if entry.get("port"):
            port = Port.objects.filter(pk=canonical_uuid(entry["port"])).first()
            if port is None or (not ctx.is_admin and port.project_id != ctx.project_id):
                raise errors.NotFound(f"Port {entry['port']} could not be found.")
            if port.device_id:
                raise errors.Conflict(f"Port {port.id} is still in use.")
            resolved.append({"network": port.network, "port": port, "fixed_ip": None})
            continue
        net_id = canonical_uuid(entry.get("uuid", ""))
        network = Network.objects.filter(pk=net_id).first() if net_id else None
        if network is None or not (
            network.shared or ctx.is_admin or network.project_id == ctx.project_id
        ):
            raise errors.BadRequest(f"Network {entry.get('uuid')} could not be found.")
        resolved.append({"network": network, "port": None, "fixed_ip": entry.get("fixed_ip")})
    return resolved


def flavor_snapshot(flavor: Flavor) -> dict:
    """The flavor as a server keeps it: later edits or deletion of the flavor don't change it."""
    return {
        "id": flavor.flavorid,
        "name": flavor.name,
        "vcpus": flavor.vcpus,
        "ram": flavor.memory_mb,
        "disk": flavor.root_gb,
        "ephemeral": flavor.ephemeral_gb,
        "swap": flavor.swap,
        "extra_specs": flavor.extra_specs,
    }


# What Nova answers when trusted certificates reach a host that cannot validate them; no Kumo host
# validates image signatures, so the boot is refused before anything is made.
TRUSTED_CERTS_UNSUPPORTED = (
    "Image signature certificate validation failed: trusted image certificates provided, but no "
    "compute host supports certificate validation."
)


def image_for_boot(ctx: RequestContext, image_ref: str, flavor: Flavor) -> Image:
    """The image a boot names, if the caller may use it, it is active and the flavor is big
    enough for it (its min_ram and min_disk); 400 saying which is not so."""
    image_id = canonical_uuid(image_ref)
    return _bootable(visible_image(ctx, image_id) if image_id else None, image_ref, flavor)


def _bootable(image: Image | None, image_ref: str, flavor: Flavor) -> Image:
    """image_for_boot's checks of the image it found (None: none the caller may see)."""
    if image is None:
        raise errors.BadRequest(f"Image {image_ref} could not be found.")
    if image.status != "active":
        raise errors.BadRequest(f"Image {image.id} is not active.")
    if image.min_ram and flavor.memory_mb < image.min_ram:
        raise errors.BadRequest("Flavor's memory is too small for requested image.")
    if (image.min_disk and flavor.root_gb and flavor.root_gb < image.min_disk
            and not volume_images.is_volume_snapshot(image)):  # its root disk is a volume
        raise errors.BadRequest("Flavor's disk is too small for requested image.")
    return image


def image_for_volume(ctx: RequestContext, image_ref: str, size_gb: int) -> Image:
    """An image a volume is made from to boot: usable by the caller, active, and no bigger than
    the volume asked for (its min_disk)."""
    image_id = canonical_uuid(image_ref)
    image = visible_image(ctx, image_id) if image_id else None
    if image is None:
        raise errors.BadRequest(f"Image {image_ref} could not be found.")
    if image.status != "active":
        raise errors.BadRequest(f"Image {image.id} is not active.")
    if image.min_disk and size_gb < image.min_disk:
        raise errors.BadRequest(f"Volume size {size_gb} GiB is smaller than the image's "
                                f"minimum disk ({image.min_disk} GiB).")
    return image


def create_servers(ctx: RequestContext, req: ServerRequest) -> list[Instance]:
    if req.trusted_image_certificates:
        raise errors.BadRequest(TRUSTED_CERTS_UNSUPPORTED)
    if req.hostname is not None and req.max_count > 1:
        raise errors.BadRequest("Unable to allocate a single hostname to multiple instances")
    devices = req.block_devices
    from_volume = boot_volumes.boot_device(devices) is not None
    written_out = boot_sql.available()
    flavor, image = _flavor_and_image(ctx, req, from_volume, written_out)
    if image is not None and volume_images.is_volume_snapshot(image):
        # A volume-backed server's snapshot: it boots from new volumes made from the snapshots.
        devices, image, from_volume = volume_images.devices_from(image, devices), None, True
    boot_volumes.check(ctx, devices, count=req.max_count, image_check=image_for_volume)
    if req.min_count > req.max_count:
        raise errors.BadRequest("min_count must be <= max_count")
    nets = _resolve_networks(ctx, req.networks)
    if req.max_count > 1 and any(n["port"] or n["fixed_ip"] for n in nets):
        raise errors.BadRequest("Multiple instances cannot share one port or fixed IP.")

    snapshot = flavor_snapshot(flavor)
    destination = req.destination
    destinations.check_destination(destination.host, destination.node)
    if destination.forced:
        zone = destinations.zone_with_forced_host(req.availability_zone, destination.host)
    else:
        zone = availability_zones.validate_requested_zone(ctx, req.availability_zone)
    groups = server_security_groups.requested_groups(ctx, req.security_groups)
    group = server_groups.group_from_hints(ctx, req.scheduler_hints)
    keypair = keypairs.key_for_server(ctx, req.key_name)
    reservation_id = "r-" + secrets.token_hex(4)
    created = []
    with transaction.atomic():
        # Checked and counted under the project's lock, so concurrent boots cannot overshoot.
        quotas.reserve(
            ctx.scope,
            {
                "instances": req.max_count,
                "cores": flavor.vcpus * req.max_count,
                "ram": flavor.memory_mb * req.max_count,
                "metadata_items": len(req.metadata),
                "server_group_members": req.max_count if group else 0,
            },
            user_id=ctx.user_id,  # the user's own limits in the project, if an admin set any
            group=group,
        )
        for index in range(req.max_count):
            name = req.name if req.max_count == 1 else f"{req.name}-{index + 1}"
            instance = Instance(
                display_name=name,
                hostname=req.hostname or hostname_for(name),
                description=req.description,
                project_id=ctx.project_id,
                user_id=ctx.user_id,
                image_ref=str(image.id) if image is not None else "",
                flavor=flavor,
                flavor_snapshot=snapshot,
                vcpus=flavor.vcpus,
                memory_mb=flavor.memory_mb,
                # A volume is its root disk: the host gives it no local one (Nova's root_gb 0).
                root_gb=0 if from_volume else flavor.root_gb,
                ephemeral_gb=flavor.ephemeral_gb,
                vm_state=states.BUILDING,
                task_state=states.SCHEDULING,
                availability_zone=zone,
                key_name=req.key_name,
                key_data=keypair.public_key if keypair else "",
                user_data=req.user_data,
                metadata=req.metadata,
                requested_networks=[str(n["network"].id) for n in nets],
                scheduler_hints=req.scheduler_hints,
                access_ip_v4=req.access_ip_v4,
                access_ip_v6=req.access_ip_v6,
                config_drive=req.config_drive,
                launch_index=index,
                reservation_id=reservation_id,
                security_groups=groups,
                requested_host=destination.host,
                requested_node=destination.node,
                force_destination=destination.forced,
            )
            _write_instance(ctx, instance, written_out)
            server_tags.add_initial_tags(instance, req.tags)
            _attach_ports(ctx, instance, nets)
            if group is not None:
                server_groups.add_member(group, instance)
            if devices and not boot_volumes.prepare(ctx, instance, devices):
                # Scheduled once its volumes are made (boot_volumes.volume_changed).
                instance.task_state = states.BLOCK_DEVICE_MAPPING
                instance.save(update_fields=["task_state"])
                events.instance_changed(instance.uuid, project_id=ctx.project_id)
                created.append(instance)
                continue
            events.instance_changed(instance.uuid, project_id=ctx.project_id)
            rpc.schedule_instance(str(instance.uuid), ctx.request_id)
            created.append(instance)
    return created


def _flavor_and_image(
    ctx: RequestContext, req: ServerRequest, from_volume: bool, written_out: bool
) -> tuple[Flavor, Image | None]:
    """The flavor and the image (None for a boot from a volume) the request names, each checked
    as usable by the caller: read in one round trip (boot_sql.py) where the database takes it,
    else through the ORM, by the same rules."""
    seen = None
    if written_out:
        image_id = None if from_volume else canonical_uuid(req.image_id)
        flavor, seen = boot_sql.flavor_and_image(ctx, ref_id(req.flavor_ref), image_id)
    else:
        flavor = find_flavor(req.flavor_ref, ctx)
    if flavor is None or flavor.disabled:
        raise errors.BadRequest(f"Flavor {req.flavor_ref} could not be found.")
    if from_volume:
        return flavor, None
    if written_out:
        return flavor, _bootable(seen, req.image_id, flavor)
    return flavor, image_for_boot(ctx, req.image_id, flavor)


def _write_instance(ctx: RequestContext, instance: Instance, written_out: bool) -> None:
    """Save the new instance and open its "create" action: one statement (boot_sql.py) where
    the database takes it, else the ORM's two."""
    action = action_records.new_action(ctx, instance, "create")
    if written_out:
        boot_sql.insert_with_action(instance, action)
    else:
        instance.save(force_insert=True)
        action.save(force_insert=True)


def _attach_ports(ctx: RequestContext, instance: Instance, nets: list[dict]) -> None:
    for entry in nets:
        port = entry["port"]
        if port is not None:
            # A port the caller made keeps the security groups it was given, as in Nova.
            port.device_id = str(instance.uuid)
            port.device_owner = "compute:nova"
            port.save(update_fields=["device_id", "device_owner", "updated_at"])
        else:
            port = ipam.allocate_port(
                entry["network"],
                project_id=ctx.project_id,
                device_id=str(instance.uuid),
                fixed_ip=entry["fixed_ip"],
            )
            server_security_groups.apply_to_port(instance, port)


def _release_ports(instance_uuid: str, host: str | None) -> None:
    """Free the instance's ports; their host's data plane drops them, and rules that name their
    groups as remote group lose their addresses."""
    ports = list(Port.objects.filter(device_id=instance_uuid))
    groups = {str(g) for p in ports for g in p.security_groups.values_list("id", flat=True)}
    # Their floating IPs stay the project's, associated with nothing (as Neutron does when a
    # port is deleted), and their routers stop forwarding to the freed addresses.
    floating = FloatingIp.objects.filter(port__in=ports)
    routers = {str(r) for r in floating.exclude(router=None).values_list("router_id", flat=True)}
    floating.update(port=None, fixed_ip_address=None, router=None, status="DOWN")
    ipam.release_ports(instance_uuid)
    for router_id in sorted(routers):
        dataplane.notify_router(router_id)
    for port in ports:
        dataplane.notify_port_removed(str(port.id), host or "")
    dataplane.notify_groups(sorted(groups))


def servers_for(ctx: RequestContext, *, all_tenants: bool = False) -> QuerySet[Instance]:
    """The servers a context may see: its project's, or everyone's for an admin who asks."""
    qs = Instance.objects.all()
    if not (ctx.is_admin and all_tenants):
        qs = qs.filter(project_id=ctx.project_id)
    return qs


def get_server(ctx: RequestContext, server_id: str) -> Instance:
    uuid = canonical_uuid(server_id)
    qs = Instance.objects.filter(deleted=False)
    if not ctx.is_admin:
        qs = qs.filter(project_id=ctx.project_id)
    instance = qs.filter(pk=uuid).first() if uuid else None
    if instance is None:
        raise errors.NotFound(f"Instance {server_id} could not be found.")
    return instance


@runs("delete")
def delete_server(ctx: RequestContext, instance: Instance) -> None:
    """Delete a server: its host destroys the domain and reports back (then complete_delete).

    Without a host, or on a host that is down, the delete completes here at once (Nova's local
    delete); the destroy still waits in the host's queue, and its next report has any leftover
    domain destroyed. A repeated delete of a server already being deleted sends the destroy again
    (the first may have been lost) instead of doing nothing."""
    operation = REGISTRY["delete"]
    ensure_unlocked(ctx, instance)
    with transaction.atomic():
        if not move(instance, operation):
            current = Instance.objects.filter(pk=instance.pk).first()
            if current is None or current.deleted:
                return
            if current.task_state != states.DELETING:
                raise refusal(operation, instance)
            instance = current
        else:
            record_action(ctx, instance, "delete")
            events.instance_changed(instance.uuid)
            instance.refresh_from_db()
        if instance.host:
            rpc.destroy(
                instance.host,
                msg.DestroyRequest(request_id=ctx.request_id, instance_uuid=str(instance.uuid)),
            )
    if not instance.host or not host_is_up(instance.host):
        if instance.host:
            action_records.record_event(
                str(instance.uuid), action_records.EVENT_LOCAL_DELETE, action_records.SUCCESS,
                host=instance.host,
                details=f"host {instance.host} is not responding; deleted without it")
        complete_delete(str(instance.uuid))


def complete_delete(instance_uuid: str) -> None:
    """Finish deleting an instance: give back its claim and ports, mark it deleted.

    Idempotent: an instance already deleted (or missing) is left as it is.
    """
    with transaction.atomic():
        now = timezone.now()
        host = Instance.objects.filter(uuid=instance_uuid).values_list("host", flat=True).first()
        marked = Instance.objects.filter(uuid=instance_uuid, deleted=False).update(
            deleted=True,
            vm_state=states.DELETED,
            task_state=None,
            power_state=msg.POWER_NOSTATE,
            deleted_at=now,
            terminated_at=now,
            updated_at=now,
            console_port=None,
        )
        if not marked:
            return
        events.instance_changed(instance_uuid)
        claims.release(instance_uuid)
        # A move the delete interrupted ends in error (a resize waiting to be confirmed, status
        # finished, stays as it is); its destination's domain, if any, is destroyed at that host's
        # next report, as any domain without a live instance.
        Migration.objects.filter(
            instance__uuid=instance_uuid,
            status__in=states.MIGRATION_IN_PROGRESS - {states.MIGRATION_FINISHED},
        ).update(status=states.MIGRATION_ERROR, updated_at=now)
        _release_ports(instance_uuid, host)
        # Its volumes are let go (available again, their data kept) or, as asked, deleted.
        server_volumes.release_all(instance_uuid)
        # Its console links die with it; open sessions notice at their next re-check.
        consoles.delete_instance_tokens(instance_uuid)
        # A shelved server's disk image goes with it, as in Nova.
        if changes := shelving.drop_shelved_image(instance_uuid):
            Instance.objects.filter(uuid=instance_uuid).update(**changes)
        action_records.record_event(
            instance_uuid, action_records.EVENT_TERMINATE, action_records.SUCCESS, finish_action=True
        )


# The API's names for what PUT /servers/{id} may change, and the columns they live in.
_UPDATABLE_FIELDS = {
    "name": "display_name",
    "access_ip_v4": "access_ip_v4",
    "access_ip_v6": "access_ip_v6",
    "description": "description",
    "hostname": "hostname",
}


def update_server(ctx: RequestContext, instance: Instance, **fields: str | None) -> Instance:
    """Change a server's name, access addresses or description (already validated and normalised).

    The lock is re-checked in the statement that writes, so a lock taken meanwhile still wins.
    """
    unknown = set(fields) - set(_UPDATABLE_FIELDS)
    if unknown:
        raise TypeError(f"update_server() got unexpected fields {sorted(unknown)}")
    ensure_unlocked(ctx, instance)
    if not fields:
        return instance
    changes: dict = {_UPDATABLE_FIELDS[name]: value for name, value in fields.items()}
    rows = Instance.objects.filter(pk=instance.pk, deleted=False)
    if not ctx.is_admin:
        rows = rows.filter(locked=False)
    if rows.update(**changes, updated_at=timezone.now()) != 1:
        current = Instance.objects.filter(pk=instance.pk, deleted=False).first()
        if current is None:
            raise errors.NotFound(f"Instance {instance.uuid} could not be found.")
        raise errors.Conflict(f"Instance {instance.uuid} is locked")
    events.instance_changed(instance.uuid)
    instance.refresh_from_db()
    return instance


def rebuild_server(
    ctx: RequestContext,
    instance: Instance,
    image_ref: str,
    *,
    changes: dict[str, str | None],
    **rebuild: object,
) -> Instance:
    """Rebuild with what else the request changes on the way (description, hostname, access
    addresses, key pair, user data): written in the transaction that starts the rebuild, so the
    host builds the new disk with them, and nothing changes when the rebuild is refused."""
    unknown = set(changes) - {"description", "hostname", "access_ip_v4", "access_ip_v6",
                              "key_name", "user_data"}
    if unknown:
        raise TypeError(f"rebuild_server() got unexpected changes {sorted(unknown)}")
    columns: dict[str, object] = {k: v for k, v in changes.items() if k != "key_name"}
    if "key_name" in changes:
        keypair = keypairs.key_for_server(ctx, changes["key_name"])
        columns["key_name"] = changes["key_name"]
        columns["key_data"] = keypair.public_key if keypair else ""
    with transaction.atomic():
        if columns:
            Instance.objects.filter(pk=instance.pk, deleted=False).update(**columns)
        row = perform(ctx, instance, "rebuild", image_ref=image_ref, **rebuild)
    return row


def set_pinned_zone(ctx: RequestContext, instance: Instance, zone: str | None) -> None:
    """Unpin the server from its availability zone (None) or pin it again to the zone it is in
    (2.104): its next move goes anywhere, or stays in that zone. Moving a pin from one zone to
    another directly, or pinning to a zone the server is not in, is 409, as in Nova."""
    ensure_unlocked(ctx, instance)
    with transaction.atomic():
        row = locked_row(instance)
        pinned = row.availability_zone
        if zone is None:
            if pinned is not None:
                write(row, availability_zone=None)
            return
        if pinned is not None:
            if zone != pinned:
                raise errors.Conflict(
                    "Cannot change pinned availability zone directly. Unpin first by setting "
                    "pinned_availability_zone to null.")
            return
        current = current_zone(row)
        if zone != current:
            raise errors.Conflict(
                f"Server can only be pinned to its current availability zone '{current}', but "
                f"'{zone}' was requested.")
        write(row, availability_zone=zone)


def current_zone(instance: Instance) -> str:
    """The zone a server is in: its host's, or before it has one the zone it asked for."""
    if instance.host:
        zones = availability_zones.host_zones([instance.host])
        return availability_zones.zone_of(instance.host, zones)
    return instance.availability_zone or ""


# What os-resetState may set, by the name the API takes.
RESET_STATES = {"active": states.ACTIVE, "error": states.ERROR}


@runs("reset_state")
def reset_state(ctx: RequestContext, instance: Instance, state: str) -> None:
    """An admin's repair: set vm_state to active or error and clear any task, from any state."""
    vm_state = RESET_STATES[state]
    with transaction.atomic():
        row = locked_row(instance)
        write(row, vm_state=vm_state, task_state=None)
        record_action(ctx, row, "resetState")


def before_project_deleted(sender: object, project: Project, **_: object) -> None:
    """Identity is about to delete `project` (identity/signals.py): refuse while it has live
    servers; otherwise drop its deleted ones, whose history has no owner left to read it."""
    live = Instance.objects.filter(project=project, deleted=False).count()
    if live:
        raise errors.Conflict(
            f"Project {project.pk} still has {live} instance(s); delete them first."
        )
    Instance.objects.filter(project=project, deleted=True).delete()


def before_user_deleted(sender: object, user: User, **_: object) -> None:
    """As for projects: a user who still owns live servers stays."""
    live = Instance.objects.filter(user=user, deleted=False).count()
    if live:
        raise errors.Conflict(f"User {user.pk} still owns {live} instance(s); delete them first.")
    Instance.objects.filter(user=user, deleted=True).delete()
