"""Volumes panel: the project's volumes, a volume's page with its attachments and snapshots, and
create (empty, from an image or from a snapshot), extend, attach to an instance, detach,
snapshot and delete — through the same service functions as the Block Storage API
(cloud/volumes/) and the server operations (attach_volume, detach_volume), so the dashboard
refuses exactly what the APIs refuse, with their reasons shown as messages."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from cloud import errors
from cloud.compute import guest_kinds, operations, states
from cloud.compute.models import Instance
from cloud.identity import policy
from cloud.identity.context import RequestContext
from cloud.images import images as image_services
from cloud.volumes import attachments, statuses
from cloud.volumes import snapshots as snapshot_services
from cloud.volumes import volumes as volume_services
from cloud.volumes.models import Volume

from .context import dashboard_view
from .forms import attach, check_name

READ = "volume:volumes:read"
WRITE = "volume:volumes:write"
SNAPSHOT_WRITE = "volume:snapshots:write"
MAX_SIZE = 1024  # GiB a form offers; the quota decides what is allowed
# Servers a volume can be plugged into: the guest exists on its host.
_ATTACHABLE = (states.ACTIVE, states.STOPPED, states.PAUSED, states.SUSPENDED)


class VolumeForm(forms.Form):
    name = forms.CharField(max_length=255, required=False)
    size = forms.IntegerField(label="Size (GiB)", min_value=1, max_value=MAX_SIZE, required=False,
                              help_text="Empty: the size of the image or snapshot.")
    source = forms.ChoiceField(label="Source", required=False)
    description = forms.CharField(max_length=255, required=False)

    def __init__(self, ctx: RequestContext, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        choices = [("", "Empty volume")]
        if policy.allowed(ctx, "image:get"):
            page = image_services.list_images(ctx, {"limit": "200", "status": "active",
                                                    "sort_key": "name", "sort_dir": "asc"})
            choices += [(f"image:{i.id}", f"Image: {i.name or i.id}") for i in page.images]
        if policy.allowed(ctx, "volume:snapshots:read"):
            choices += [(f"snapshot:{s.id}", f"Snapshot: {s.name or s.id}")
                        for s in snapshot_services.list_snapshots(ctx, {})
                        if s.status == statuses.AVAILABLE]
        self.fields["source"].choices = choices

    def clean_name(self) -> str:
        name = self.cleaned_data.get("name") or ""
        return check_name(name) if name else ""

    def body(self) -> dict:
        data = self.cleaned_data
        body: dict = {"name": data["name"], "description": data["description"]}
        if data.get("size"):
            body["size"] = data["size"]
        kind, _, ident = (data.get("source") or "").partition(":")
        if kind == "image":
            body["imageRef"] = ident
        elif kind == "snapshot":
            body["snapshot_id"] = ident
        return body


class ExtendForm(forms.Form):
    new_size = forms.IntegerField(label="New size (GiB)", min_value=1, max_value=MAX_SIZE)


class AttachForm(forms.Form):
    instance = forms.ChoiceField(label="Instance")

    def __init__(self, ctx: RequestContext, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        rows = list(Instance.objects.filter(project_id=ctx.project_id, deleted=False,
                                            vm_state__in=_ATTACHABLE).order_by("display_name"))
        containers = guest_kinds.containers(rows)  # which take no volume (a 409 otherwise)
        self.fields["instance"].choices = [(str(i.uuid), i.display_name or str(i.uuid))
                                           for i in rows if str(i.uuid) not in containers]


class SnapshotForm(forms.Form):
    name = forms.CharField(max_length=255)
    description = forms.CharField(max_length=255, required=False)
    force = forms.BooleanField(required=False, label="Even though it is attached",
                               help_text="The copy is what the disk holds now, as after a crash.")


def _servers(ctx: RequestContext, volume: Volume) -> list[dict]:
    names = dict(Instance.objects.filter(
        uuid__in=[a.instance_uuid for a in volume.attachments.all() if a.instance_uuid],
        project_id=ctx.project_id).values_list("uuid", "display_name"))
    return [{"attachment": a, "server_id": str(a.instance_uuid),
             "server": names.get(a.instance_uuid, str(a.instance_uuid))}
            for a in volume.attachments.all()]


def _list(request: HttpRequest, ctx: RequestContext, form: VolumeForm | None = None,
          status: int = 200) -> HttpResponse:
    volumes = list(volume_services.list_volumes(ctx, {}))
    rows = [{"volume": v, "servers": _servers(ctx, v)} for v in volumes]
    return render(request, "dashboard/volumes.html", {
        "rows": rows, "form": form or VolumeForm(ctx),
    }, status=status)


@require_GET
@dashboard_view(READ)
def volume_list(request: HttpRequest, ctx: RequestContext) -> HttpResponse:
    return _list(request, ctx)


@require_POST
@dashboard_view(WRITE)
def volume_create(request: HttpRequest, ctx: RequestContext) -> HttpResponse:
    form = VolumeForm(ctx, request.POST)
    if not form.is_valid():
        return _list(request, ctx, form, status=400)
    try:
        volume = volume_services.create_volume(ctx, form.body())
    except (errors.BadRequest, errors.Conflict, errors.OverLimit, errors.NotFound) as exc:
        attach(form, exc)
        return _list(request, ctx, form, status=400)
    messages.success(request, f"Volume {volume.name or volume.id} is being created.")
    return redirect(f"/volumes/{volume.id}/")


def _detail(request: HttpRequest, ctx: RequestContext, volume: Volume, *,
            extend: ExtendForm | None = None, attach_form: AttachForm | None = None,
            snapshot: SnapshotForm | None = None, status: int = 200) -> HttpResponse:
    snaps = [s for s in snapshot_services.list_snapshots(ctx, {"volume_id": str(volume.id)})]
    return render(request, "dashboard/volume_detail.html", {
        "volume": volume,
        "servers": _servers(ctx, volume),
        "snapshots": snaps,
        "extend_form": extend or ExtendForm(initial={"new_size": volume.size + 1}),
        "attach_form": attach_form or AttachForm(ctx),
        "snapshot_form": snapshot or SnapshotForm(),
        "available": volume.status == statuses.AVAILABLE,
        "attached": volume.status == statuses.IN_USE,
        "settling": volume.status in (statuses.CREATING, statuses.ATTACHING, statuses.DETACHING,
                                      statuses.EXTENDING, statuses.DELETING, statuses.RESERVED,
                                      statuses.UPLOADING, statuses.DOWNLOADING),
    }, status=status)


def _volume(ctx: RequestContext, volume_id: str) -> Volume:
    return volume_services.get_volume(ctx, volume_id)


@require_GET
@dashboard_view(READ)
def volume_detail(request: HttpRequest, ctx: RequestContext, volume_id: str) -> HttpResponse:
    return _detail(request, ctx, _volume(ctx, volume_id))


@require_POST
@dashboard_view(WRITE)
def volume_extend(request: HttpRequest, ctx: RequestContext, volume_id: str) -> HttpResponse:
    volume = _volume(ctx, volume_id)
    form = ExtendForm(request.POST)
    if form.is_valid():
        try:
            volume_services.extend_volume(ctx, volume.id, form.cleaned_data["new_size"])
        except (errors.BadRequest, errors.Conflict, errors.OverLimit) as exc:
            attach(form, exc, "new_size")
        else:
            messages.success(request, f"Volume {volume.name or volume.id} is being extended to "
                                      f"{form.cleaned_data['new_size']} GiB.")
            return redirect(f"/volumes/{volume.id}/")
    return _detail(request, ctx, volume, extend=form, status=400)


@require_POST
@dashboard_view(WRITE)
def volume_attach(request: HttpRequest, ctx: RequestContext, volume_id: str) -> HttpResponse:
    volume = _volume(ctx, volume_id)
    form = AttachForm(ctx, request.POST)
    if form.is_valid():
        instance = Instance.objects.filter(uuid=form.cleaned_data["instance"], deleted=False,
                                           project_id=ctx.project_id).first()
        try:
            if instance is None:
                raise errors.NotFound("That instance is gone.")
            mapping = operations.perform(ctx, instance, "attach_volume",
                                         volume_id=str(volume.id))
        except (errors.BadRequest, errors.Conflict, errors.NotFound, errors.Forbidden) as exc:
            attach(form, exc, "instance")
        else:
            messages.success(request, f"Attaching to {instance.display_name} as "
                                      f"{mapping.device_name}.")
            return redirect(f"/volumes/{volume.id}/")
    return _detail(request, ctx, volume, attach_form=form, status=400)


@require_POST
@dashboard_view(WRITE)
def volume_detach(request: HttpRequest, ctx: RequestContext, volume_id: str,
                  instance_id: str) -> HttpResponse:
    volume = _volume(ctx, volume_id)
    if attachments.for_volume(volume.id, instance_id) is None:
        messages.error(request, "The volume is not attached to that instance.")
        return redirect(f"/volumes/{volume.id}/")
    instance = Instance.objects.filter(uuid=instance_id, deleted=False,
                                       project_id=ctx.project_id).first()
    try:
        if instance is None:
            raise errors.NotFound("That instance is gone.")
        operations.perform(ctx, instance, "detach_volume", volume_id=str(volume.id))
    except (errors.BadRequest, errors.Conflict, errors.NotFound, errors.Forbidden) as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Detaching from {instance.display_name}.")
    if request.POST.get("back") == "instance":
        return redirect(f"/instances/{instance_id}/")
    return redirect(f"/volumes/{volume.id}/")


@require_POST
@dashboard_view(SNAPSHOT_WRITE)
def volume_snapshot(request: HttpRequest, ctx: RequestContext, volume_id: str) -> HttpResponse:
    volume = _volume(ctx, volume_id)
    form = SnapshotForm(request.POST)
    if form.is_valid():
        try:
            snapshot_services.create_snapshot(ctx, {"volume_id": str(volume.id),
                                                    **form.cleaned_data})
        except (errors.BadRequest, errors.Conflict, errors.OverLimit) as exc:
            attach(form, exc)
        else:
            messages.success(request, f"Snapshot {form.cleaned_data['name']} is being taken.")
            return redirect(f"/volumes/{volume.id}/")
    return _detail(request, ctx, volume, snapshot=form, status=400)


@require_http_methods(["GET", "POST"])
@dashboard_view(WRITE)
def volume_delete(request: HttpRequest, ctx: RequestContext, volume_id: str) -> HttpResponse:
    volume = _volume(ctx, volume_id)
    label = volume.name or str(volume.id)
    if request.method == "POST":
        try:
            volume_services.delete_volume(ctx, volume.id)
        except (errors.BadRequest, errors.Conflict) as exc:
            messages.error(request, exc.message)
            return redirect(f"/volumes/{volume.id}/")
        messages.success(request, f"Volume {label} is being deleted.")
        return redirect("/volumes/")
    return render(request, "dashboard/confirm_simple.html", {
        "title": f"Delete volume {label}?",
        "question": "Its data is gone for good. A volume that is attached, or has snapshots, "
                    "cannot be deleted.",
        "button": "Delete volume",
        "cancel": f"/volumes/{volume.id}/",
    })


@require_http_methods(["GET", "POST"])
@dashboard_view(SNAPSHOT_WRITE)
def snapshot_delete(request: HttpRequest, ctx: RequestContext, snapshot_id: str) -> HttpResponse:
    snapshot = snapshot_services.get_snapshot(ctx, snapshot_id)
    back = f"/volumes/{snapshot.volume_id}/"
    label = snapshot.name or str(snapshot.id)
    if request.method == "POST":
        try:
            snapshot_services.delete_snapshot(ctx, snapshot.id)
        except (errors.BadRequest, errors.Conflict) as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"Snapshot {label} is being deleted.")
        return redirect(back)
    return render(request, "dashboard/confirm_simple.html", {
        "title": f"Delete snapshot {label}?",
        "question": "Volumes made from it keep their data.",
        "button": "Delete snapshot",
        "cancel": back,
    })


def instance_volumes(ctx: RequestContext, instance_id: str) -> list[dict]:
    """An instance's volumes for its page (empty for a user who may not read volumes)."""
    if not policy.allowed(ctx, READ):
        return []
    rows = []
    for attachment in attachments.of_instance(instance_id):
        volume = attachment.volume
        if volume.project_id != ctx.project_id and not ctx.is_admin:
            continue
        rows.append({"volume": volume, "device": attachment.mountpoint,
                     "status": attachment.status})
    return rows
