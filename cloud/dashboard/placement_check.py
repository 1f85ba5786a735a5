"""Where would this fit? The operators' form over the scheduler's dry run (cloud/scheduler/
explain.py, the same service as POST /os-kumo-placement-check, under the same rule): pick a
flavor and optionally an image, a server group and a zone, and see every host as a boot made now
would meet it — ranked if it passes, else the filter that removed it and why, in numbers.

The form is a GET: asking changes nothing, and the answer's address can be shared.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from cloud import errors
from cloud.compute import availability_zones, server_groups
from cloud.compute.models import Instance
from cloud.identity.context import RequestContext
from cloud.images.images import visible_images
from cloud.scheduler import explain

from .context import dashboard_view
from .forms import attach, flavor_choices

RULE = "compute:placement_check"

# Words of a refusal → the field it is about, to show it next to that field.
_FIELD_OF = (("Flavor", "flavor"), ("Image", "image"), ("Instance group", "group"),
             ("availability zone", "zone"))


class PlacementCheckForm(forms.Form):
    flavor = forms.ChoiceField(label="Flavor")
    image = forms.ChoiceField(label="Image", required=False,
                              help_text="Its minimum RAM and disk are checked against the flavor.")
    group = forms.ChoiceField(label="Server group", required=False)
    zone = forms.ChoiceField(label="Availability zone", required=False)

    def __init__(self, ctx: RequestContext, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["flavor"].choices = flavor_choices(ctx)
        self.fields["image"].choices = [("", "— none —")] + [
            (str(i.id), i.name or str(i.id))
            for i in visible_images(ctx).filter(status="active").order_by("name")]
        self.fields["group"].choices = [("", "— none —")] + [
            (str(g.uuid), f"{g.name} ({g.policy})")
            for g in server_groups.list_groups(ctx, all_projects=True)]
        self.fields["zone"].choices = [("", "— any —")] + [
            (z.name, z.name) for z in availability_zones.list_zones() if z.available]


def url_for(instance: Instance) -> str:
    """The form asked for what `instance` asked for (its flavor, image, zone and group): from a
    failed build, "where would it fit now?" in one click."""
    group = server_groups.groups_of_servers([str(instance.uuid)]).get(str(instance.uuid), [""])
    asked = {"flavor": (instance.flavor_snapshot or {}).get("id", ""),
             "image": instance.image_ref or "", "group": group[0],
             "zone": instance.availability_zone or ""}
    return f"/manage/placement-check/?{urlencode(asked)}"


def _field_for(message: str) -> str | None:
    return next((field for words, field in _FIELD_OF if words in message), None)


@require_GET
@dashboard_view(RULE)
def placement_check(request: HttpRequest, ctx: RequestContext) -> HttpResponse:
    asked = "flavor" in request.GET
    form = PlacementCheckForm(ctx, request.GET if asked else None)
    check = None
    if asked and form.is_valid():
        data = form.cleaned_data
        try:
            check = explain.check_placement(
                ctx, flavor_ref=data["flavor"], image_ref=data["image"] or None,
                group_id=data["group"] or None, availability_zone=data["zone"] or None)
        except errors.BadRequest as exc:
            attach(form, exc, _field_for(exc.message))
    return render(request, "dashboard/admin/placement_check.html", {"form": form, "check": check})
