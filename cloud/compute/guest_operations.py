"""Operations the compute host carries out on a server (operations.py declares them): power,
reboot, rebuild, resize, snapshot, console output.

Each one starts its task with transitions.begin (409 when the state rule forbids it), and sends the
host its request in the same transaction, so the request leaves only once the task is committed.
The host's report (cloud/conductor/operation_events.py) finishes the task.
"""

from __future__ import annotations

import time
import uuid

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from cloud import errors, events, rpc
from cloud.identity import tokens
from cloud.identity.context import RequestContext
from cloud.ids import canonical_uuid, ref_id
from cloud.images import images as image_services
from cloud.images.models import Image
from compute_agent import messages as msg

from . import (
    claims,
    disk_images,
    guest_kinds,
    migration_records,
    quotas,
    server_volumes,
    states,
    volume_images,
)
from .claims import resize_claim
from .models import Flavor, Instance, Migration
from .operations import REGISTRY, Operation, runs
from .servers import find_flavor, flavor_snapshot
from .spawn import build_spawn_request
from .transitions import begin, ensure_host_up

SNAPSHOT_TOKEN_TTL = 3600
CONSOLE_WAIT_SECONDS = 15.0


@runs()
def run_on_host(ctx: RequestContext, instance: Instance, *, operation: Operation) -> None:
    """Any host operation without arguments (start, stop, pause…): begin its task and ask the host."""
    assert operation.host_task is not None
    with transaction.atomic():
        row = begin(ctx, instance, operation)
        rpc.to_host(row.host, operation.host_task,
                    msg.PowerRequest(request_id=ctx.request_id, instance_uuid=str(row.uuid)))


@runs("start")
def start(ctx: RequestContext, instance: Instance) -> None:
    """Start a stopped server. One whose domain its host no longer has (a stopped server on a
    rebooted host, or on libvirt's test driver after its agent restarted) is started by a hard
    reboot, which carries the whole guest and defines it again on the disk it kept."""
    with transaction.atomic():
        row = begin(ctx, instance, REGISTRY["start"])
        if row.power_state == msg.POWER_NOSTATE:
            rpc.to_host(row.host, msg.TASK_REBOOT, reboot_request(row, ctx.request_id, hard=True))
        else:
            rpc.to_host(row.host, msg.TASK_START,
                        msg.PowerRequest(request_id=ctx.request_id, instance_uuid=str(row.uuid)))


@runs("reboot")
def reboot(ctx: RequestContext, instance: Instance) -> None:
    _reboot(ctx, instance, hard=False)


@runs("reboot_hard")
def reboot_hard(ctx: RequestContext, instance: Instance) -> None:
    _reboot(ctx, instance, hard=True)


def _reboot(ctx: RequestContext, instance: Instance, *, hard: bool) -> None:
    with transaction.atomic():
        row = begin(ctx, instance, REGISTRY["reboot_hard" if hard else "reboot"])
        rpc.to_host(row.host, msg.TASK_REBOOT, reboot_request(row, ctx.request_id, hard=hard))


def reboot_request(row: Instance, request_id: str, *, hard: bool) -> msg.RebootRequest:
    """What the host is asked. A hard reboot carries the whole guest, as Nova's re-creates it
    from the database: a host that lost the domain (rebooted, or libvirt's test driver after
    its agent restarted) defines it again on the disks it kept instead of failing."""
    return msg.RebootRequest(
        request_id=request_id, instance_uuid=str(row.uuid),
        reboot_type=msg.REBOOT_HARD if hard else msg.REBOOT_SOFT,
        spawn=build_spawn_request(row, request_id) if hard else None)


@runs("rebuild")
def rebuild(
    ctx: RequestContext,
    instance: Instance,
    image_ref: str,
    *,
    name: str | None = None,
    metadata: dict[str, str] | None = None,
    user_data: str | None = None,
) -> Instance:
    image_id = canonical_uuid(ref_id(image_ref))
    image = image_services.visible_images(ctx).filter(pk=image_id).first() if image_id else None
    if image is None or image.status != "active":
        raise errors.BadRequest(f"Image {image_ref} could not be found.")
    guest_kinds.ensure_image_fits(instance, image)
    changes: dict = {"image_ref": str(image.id)}
    if server_volumes.boots_from_volume(instance):
        # Its root disk is a volume, which a rebuild does not re-image (Nova before 2.93): only
        # the image it was made from may be named, and the server stays without an image.
        if str(image.id) != server_volumes.boot_volume_image(instance):
            raise errors.BadRequest("Unable to rebuild with a different image for a "
                                    "volume-backed server.")
        changes = {}
    if name is not None:
        changes["display_name"] = name
    if metadata is not None:
        quotas.check_metadata_items(ctx.project_id, len(metadata))
        changes["metadata"] = metadata
    if user_data is not None:
        changes["user_data"] = user_data
    with transaction.atomic():
        row = begin(ctx, instance, REGISTRY["rebuild"], **changes)
        rpc.to_host(row.host, msg.TASK_REBUILD, build_spawn_request(row, ctx.request_id))
    return row


class _NoRoomHere(Exception):
    """The server's own host cannot grow its claim: undo the resize's start."""


def check_resize(instance: Instance, flavor_ref: str) -> Flavor:
    """The flavor a resize asks for, if it may have it (400 otherwise)."""
    flavor = find_flavor(flavor_ref)
    if flavor is None or flavor.disabled:
        raise errors.BadRequest(f"Flavor {flavor_ref} could not be found.")
    if flavor.flavorid == instance.flavor_snapshot.get("id"):
        raise errors.BadRequest("When resizing, instances must change flavor!")
    if flavor.root_gb < instance.root_gb:
        raise errors.BadRequest("Resize to a flavor with a smaller disk is not allowed.")
    return flavor


def resize_here(ctx: RequestContext, instance: Instance, flavor_ref: str) -> bool:
    """Resize on the server's own host if it has room: its claim grows in place and the host
    redefines the guest. False, and nothing changed, when the host has no room (the scheduler
    then moves it: cloud/scheduler/moves.py, which registers the resize operation)."""
    flavor = check_resize(instance, flavor_ref)
    try:
        with transaction.atomic():
            reserve_growth(ctx, instance, flavor)
            row = begin(
                ctx, instance, REGISTRY["resize"],
                old_flavor_snapshot=instance.flavor_snapshot,
                flavor=flavor, flavor_snapshot=flavor_snapshot(flavor),
                vcpus=flavor.vcpus, memory_mb=flavor.memory_mb,
                root_gb=0 if server_volumes.boots_from_volume(instance) else flavor.root_gb,
                ephemeral_gb=flavor.ephemeral_gb,
            )
            if not resize_claim(str(row.uuid), row.vcpus, row.memory_mb,
                                row.root_gb + row.ephemeral_gb):
                raise _NoRoomHere
            rpc.to_host(row.host, msg.TASK_RESIZE, build_spawn_request(row, ctx.request_id))
    except _NoRoomHere:
        return False
    return True


def reserve_growth(ctx: RequestContext, instance: Instance, flavor: Flavor) -> None:
    """Quota for what a resize adds (inside the caller's transaction)."""
    quotas.reserve(ctx.scope, {
        "cores": max(0, flavor.vcpus - instance.vcpus),
        "ram": max(0, flavor.memory_mb - instance.memory_mb),
    }, user_id=str(instance.user_id) if instance.user_id else None)


@runs("confirm_resize")
def confirm_resize(ctx: RequestContext, instance: Instance) -> None:
    """Keep the new size (or host): the guest already runs as it should, so only the row changes;
    after a move, the source's copy goes and so does the claim the migration held there."""
    done = states.ACTIVE if instance.power_state != msg.POWER_SHUTDOWN else states.STOPPED
    move = migration_records.current(instance)
    with transaction.atomic():
        begin(ctx, instance, REGISTRY["confirm_resize"], vm_state=done, old_flavor_snapshot=None)
        if move is not None and migration_records.move(
            move, [states.MIGRATION_FINISHED], states.MIGRATION_CONFIRMED
        ):
            claims.finish_move(move)
            rpc.destroy(move.source_compute, msg.DestroyRequest(
                request_id=ctx.request_id, instance_uuid=str(instance.uuid)))


@runs("revert_resize")
def revert_resize(ctx: RequestContext, instance: Instance) -> None:
    """Back to the flavor it had; after a move, back to the host it came from, where the guest
    was kept shut down (the destination's copy goes)."""
    old = instance.old_flavor_snapshot or {}
    back = {
        "flavor": Flavor.objects.filter(flavorid=old.get("id")).first(),
        "flavor_snapshot": old or instance.flavor_snapshot, "old_flavor_snapshot": None,
        "vcpus": old.get("vcpus", instance.vcpus), "memory_mb": old.get("ram", instance.memory_mb),
        "root_gb": old.get("disk", instance.root_gb),
        "ephemeral_gb": old.get("ephemeral", instance.ephemeral_gb),
    } if old else {}
    move = migration_records.current(instance)
    with transaction.atomic():
        row = begin(ctx, instance, REGISTRY["revert_resize"], **back)
        if move is None:
            resize_claim(str(row.uuid), row.vcpus, row.memory_mb, row.root_gb + row.ephemeral_gb)
            rpc.to_host(row.host, msg.TASK_RESIZE, build_spawn_request(row, ctx.request_id))
            return
        if not migration_records.move(move, [states.MIGRATION_FINISHED],
                                      states.MIGRATION_REVERTING):
            raise errors.Conflict(f"Migration {move.pk} of instance {row.uuid} is {move.status}; "
                                  "only a finished one can be reverted.")
        rpc.destroy(move.dest_compute or "", msg.DestroyRequest(
            request_id=ctx.request_id, instance_uuid=str(row.uuid)))
        if move.source_vm_state != states.ACTIVE:
            # It was shut down before it moved: it stays so, back on its source, at once.
            finish_revert_here(row, move)
            return
        rpc.to_host(move.source_compute, msg.TASK_REVERT_MIGRATION, msg.MigrationRequest(
            request_id=ctx.request_id, instance_uuid=str(row.uuid), migration_id=str(move.pk),
            source_host=move.source_compute, dest_host=move.dest_compute or "", live=False,
            spawn=build_spawn_request(row, ctx.request_id)))


def finish_revert_here(instance: Instance, move: Migration) -> None:
    """A reverted move whose guest was shut down: nothing to start, it is back on its source."""
    if migration_records.move(move, [states.MIGRATION_REVERTING], states.MIGRATION_REVERTED):
        Instance.objects.filter(pk=instance.pk).update(
            host=move.source_compute, node=move.source_node, vm_state=states.STOPPED,
            task_state=None, power_state=msg.POWER_SHUTDOWN, console_port=None,
            console_socket="", updated_at=timezone.now())
        claims.undo_move(move)
        events.instance_changed(instance.pk)


@runs("snapshot")
def create_image(
    ctx: RequestContext, instance: Instance, name: str, metadata: dict[str, str] | None = None
) -> str:
    """Snapshot the server into a new image (queued until the host uploads it); its id. A
    volume-backed server's image is its volumes' snapshots (volume_images), taken at once."""
    if server_volumes.boots_from_volume(instance):
        return volume_images.create_image(ctx, instance, name, metadata)
    base = instance.image_ref
    base_image = Image.objects.filter(pk=canonical_uuid(base)).first() if base else None
    with transaction.atomic():
        row = begin(ctx, instance, REGISTRY["snapshot"])
        image = image_services.create_image(ctx, {
            "name": name, "visibility": disk_images.visibility_for(ctx, row),
            # As Nova does: the snapshot needs what its source needed, and at least its disk.
            "min_ram": base_image.min_ram if base_image else 0,
            "min_disk": max(base_image.min_disk if base_image else 0, row.root_gb),
            "image_type": "snapshot", "instance_uuid": str(row.uuid), "base_image_ref": base,
            # qcow2 of a VM's disk, or a container's root filesystem as a tar (hypervisor_type).
            **guest_kinds.saved_image_fields(row, metadata),
        })
        disk_images.offer_to_owner(ctx, image, row)
        issued = tokens.issue(row.user, row.project, ["token"], ttl=SNAPSHOT_TOKEN_TTL)
        base_url = settings.KUMO_INTERNAL_URL.rstrip("/")
        rpc.to_host(row.host, msg.TASK_SNAPSHOT, msg.SnapshotRequest(
            request_id=ctx.request_id, instance_uuid=str(row.uuid), image_id=str(image.id),
            upload_url=f"{base_url}/image/v2/images/{image.id}/file", token=issued.token))
    return str(image.id)


@runs("console_output")
def console_output(ctx: RequestContext, instance: Instance, length: int | None = None) -> str:
    """The tail of the server's serial console, asked of its host and awaited here."""
    if not instance.host:
        raise errors.Conflict(f"Instance {instance.uuid} has no console yet.")
    ensure_host_up(REGISTRY["console_output"], instance)
    request_id = f"{ctx.request_id}-{uuid.uuid4().hex[:8]}"
    rpc.to_host_now(instance.host, msg.TASK_CONSOLE_OUTPUT, msg.ConsoleOutputRequest(
        request_id=request_id, instance_uuid=str(instance.uuid), length=length))
    deadline = time.monotonic() + CONSOLE_WAIT_SECONDS
    while time.monotonic() < deadline:
        answer = cache.get(console_key(request_id))
        if answer is not None:
            if answer.get("error"):
                raise errors.Conflict(answer["error"])
            return answer["output"]
        time.sleep(0.05)
    raise errors.Conflict(f"The host of instance {instance.uuid} did not answer in time.")


def console_key(request_id: str) -> str:
    return f"kumo:console-output:{request_id}"
