"""Adding a host from the dashboard (issue 13): an "Add a host" button on the hypervisors page
issues a one-time join token, as `manage.py host-token` and POST /os-host-tokens do, and shows it
once with the command to run on the new machine (docs/adding-a-host.md)."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from cloud import errors
from cloud.enrollment import join_tokens
from cloud.identity.context import RequestContext

from .context import dashboard_view
from .forms import attach


class HostTokenForm(forms.Form):
    host = forms.CharField(
        max_length=63, label="Host name",
        help_text="Letters, digits, '.', '_' or '-'. Its queue is compute.NAME.")
    ttl_minutes = forms.IntegerField(
        min_value=1, max_value=join_tokens.MAX_TTL // 60, initial=60, label="Valid for (minutes)")


@require_http_methods(["GET", "POST"])
@dashboard_view("compute:host_tokens:create")
def host_token_new(request: HttpRequest, ctx: RequestContext) -> HttpResponse:
    form = HostTokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            issued = join_tokens.issue(form.cleaned_data["host"],
                                       form.cleaned_data["ttl_minutes"] * 60,
                                       issued_by=ctx.user_id)
        except errors.BadRequest as exc:
            attach(form, exc, "host" if "host name" in exc.message else None)
        else:
            url = settings.KUMO_INTERNAL_URL.rstrip("/")
            response = render(request, "dashboard/admin/host_token.html", {
                "issued": issued.record, "token": issued.token,
                "command": f"python -m compute_agent join {url} {issued.token} --systemd",
            }, status=201)
            response["Cache-Control"] = "no-store"  # the token is shown this once
            return response
    return render(request, "dashboard/admin/host_token_new.html", {"form": form},
                  status=400 if form.errors else 200)
