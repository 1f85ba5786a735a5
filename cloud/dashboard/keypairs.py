"""Key pairs: the signed-in user's own (they belong to users, not projects), each with a page that
shows its public key. A generated private key is handed over once, in the response that created
it, and is never stored."""

from __future__ import annotations

import base64

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from cloud import errors
from cloud.compute import keypairs
from cloud.identity.context import RequestContext

from .context import dashboard_view
from .forms import KeyPairCreateForm, KeyPairImportForm, attach


def _page(request: HttpRequest, ctx: RequestContext, *, create=None, upload=None, status=200):
    return render(request, "dashboard/keypairs.html", {
        "keypairs": keypairs.list_keypairs(ctx.user_id),
        "create_form": create or KeyPairCreateForm(prefix="create"),
        "import_form": upload or KeyPairImportForm(prefix="import"),
    }, status=status)


@require_GET
@dashboard_view("compute:keypairs:index")
def keypair_list(request: HttpRequest, ctx: RequestContext) -> HttpResponse:
    return _page(request, ctx)


@require_GET
@dashboard_view("compute:keypairs:show")
def keypair_detail(request: HttpRequest, ctx: RequestContext, name: str) -> HttpResponse:
    keypair = keypairs.get_keypair(ctx.user_id, name)
    return render(request, "dashboard/keypair_detail.html", {"keypair": keypair})


@require_POST
@dashboard_view("compute:keypairs:create")
def keypair_create(request: HttpRequest, ctx: RequestContext) -> HttpResponse:
    form = KeyPairCreateForm(request.POST, prefix="create")
    if form.is_valid():
        try:
            keypair, private_key = keypairs.create_keypair(ctx, ctx.user_id, form.cleaned_data["name"])
        except (errors.BadRequest, errors.Conflict, errors.OverLimit) as exc:
            attach(form, exc, "name")
        else:
            response = render(request, "dashboard/keypair_created.html", {
                "keypair": keypair,
                "filename": f"{keypair.name}.pem",
                "data_url": "data:application/x-pem-file;base64,"
                + base64.b64encode((private_key or "").encode()).decode(),
            })
            # The only copy of the private key: no cache may keep this page.
            response["Cache-Control"] = "no-store"
            return response
    return _page(request, ctx, create=form, status=400)


@require_POST
@dashboard_view("compute:keypairs:create")
def keypair_import(request: HttpRequest, ctx: RequestContext) -> HttpResponse:
    form = KeyPairImportForm(request.POST, prefix="import")
    if form.is_valid():
        try:
            keypairs.create_keypair(ctx, ctx.user_id, form.cleaned_data["name"],
                                    public_key=form.cleaned_data["public_key"])
        except (errors.BadRequest, errors.Conflict, errors.OverLimit) as exc:
            attach(form, exc, "public_key" if "fingerprint" in exc.message else "name")
        else:
            messages.success(request, f"Key pair {form.cleaned_data['name']} imported.")
            return redirect("/keypairs/")
    return _page(request, ctx, upload=form, status=400)


@require_http_methods(["GET", "POST"])
@dashboard_view("compute:keypairs:delete")
def keypair_delete(request: HttpRequest, ctx: RequestContext, name: str) -> HttpResponse:
    keypair = keypairs.get_keypair(ctx.user_id, name)
    if request.method == "POST":
        keypairs.delete_keypair(ctx.user_id, keypair.name)
        messages.success(request, f"Key pair {keypair.name} deleted.")
        return redirect("/keypairs/")
    return render(request, "dashboard/confirm_simple.html", {
        "title": f"Delete key pair {keypair.name}?",
        "question": "Servers that booted with it keep the key; new servers cannot use it.",
        "button": "Delete key pair",
        "cancel": "/keypairs/",
    })
