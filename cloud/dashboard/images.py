"""Images: list, details, edit (name, visibility, minimums, protection, tags, properties — one
JSON patch through the image API's own update), delete, and upload from the browser.

Upload is two requests, as with the image API: a form creates the queued image record, then the
page PUTs the file as the raw request body (XHR, so it can show progress). The body is handed to
`upload_image` in chunks as it arrives and streamed to disk by the image service; the view never
holds more than one chunk.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from cloud import errors
from cloud.identity import policy
from cloud.identity.context import RequestContext
from cloud.images import images as image_services

from .context import dashboard_view, error_page
from .forms import ImageEditForm, ImageForm, attach

CHUNK_SIZE = 1024 * 1024
PAGE_SIZE = 50


@require_GET
@dashboard_view("image:get")
def image_list(request: HttpRequest, ctx: RequestContext) -> HttpResponse:
    params = {"limit": str(PAGE_SIZE), "sort_key": "name", "sort_dir": "asc"}
    if request.GET.get("marker"):
        params["marker"] = request.GET["marker"]
    page = image_services.list_images(ctx, params)
    return render(request, "dashboard/images.html", {
        "images": page.images,
        "next_marker": page.next_marker,
        "form": ImageForm(),
    })


@require_GET
@dashboard_view("image:get")
def image_detail(request: HttpRequest, ctx: RequestContext, image_id: str) -> HttpResponse:
    image = image_services.get_image(ctx, image_id)
    owned = ctx.is_admin or image.owner_id == ctx.project_id
    return render(request, "dashboard/image_detail.html", {
        "image": image,
        "can_delete": owned and policy.allowed(ctx, "image:delete") and not image.protected,
        "can_edit": owned and policy.allowed(ctx, "image:modify"),
    })


@require_http_methods(["GET", "POST"])
@dashboard_view("image:modify")
def image_edit(request: HttpRequest, ctx: RequestContext, image_id: str) -> HttpResponse:
    image = image_services.get_image(ctx, image_id)
    form = ImageEditForm(request.POST or None, initial=ImageEditForm.initial_for(image))
    if not ctx.is_admin:
        # Making an image public is an admin's act (image:publicize): not offered otherwise.
        form.fields["visibility"].choices = [
            c for c in form.fields["visibility"].choices
            if c[0] != "public" or image.visibility == "public"]
    if request.method == "POST" and form.is_valid():
        try:
            ops = form.patch(image)
            if ops:
                image_services.update_image(ctx, image.id, ops)
        except errors.KumoError as exc:
            attach(form, exc)
        else:
            messages.success(request, f"Image {image.name or image.id} updated."
                             if ops else "Nothing changed.")
            return redirect(f"/images/{image.id}/")
    return render(request, "dashboard/image_edit.html", {"image": image, "form": form},
                  status=400 if form.errors else 200)


def _json_error(exc: errors.KumoError) -> JsonResponse:
    return JsonResponse({"error": exc.message}, status=exc.status)


@require_http_methods(["POST"])
@dashboard_view("image:create")
def image_create(request: HttpRequest, ctx: RequestContext) -> HttpResponse:
    """The image record, queued for its data; answers JSON to the upload script (or the form page
    again, with its errors)."""
    form = ImageForm(request.POST)
    if form.is_valid():
        try:
            image = image_services.create_image(ctx, form.body())
        except errors.KumoError as exc:
            if request.headers.get("Accept", "").startswith("application/json"):
                return _json_error(exc)
            attach(form, exc)
        else:
            return JsonResponse(
                {"id": str(image.id), "upload_url": f"/images/{image.id}/data"}, status=201
            )
    if request.headers.get("Accept", "").startswith("application/json"):
        return JsonResponse({"error": "; ".join(
            f"{form.fields[k].label if k in form.fields else ''}: {' '.join(v)}".lstrip(": ")
            for k, v in form.errors.items())}, status=400)
    page = image_services.list_images(ctx, {"limit": str(PAGE_SIZE)})
    return render(request, "dashboard/images.html",
                  {"images": page.images, "next_marker": page.next_marker, "form": form},
                  status=400)


def _body_chunks(request: HttpRequest) -> Iterator[bytes]:
    # Read the body where it arrives (never request.body, which would hold all of it).
    while chunk := request.read(CHUNK_SIZE):
        yield chunk


@require_http_methods(["PUT"])
@dashboard_view("image:upload")
def image_data(request: HttpRequest, ctx: RequestContext, image_id: str) -> HttpResponse:
    length = request.META.get("CONTENT_LENGTH")
    content_length = int(length) if length and length.isdigit() else None
    try:
        image = image_services.upload_image(ctx, image_id, _body_chunks(request), content_length)
    except errors.KumoError as exc:
        return _json_error(exc)
    return JsonResponse({"id": str(image.id), "status": image.status, "size": image.size})


@require_http_methods(["GET", "POST"])
@dashboard_view("image:delete")
def image_delete(request: HttpRequest, ctx: RequestContext, image_id: str) -> HttpResponse:
    image = image_services.get_image(ctx, image_id)
    if request.method == "POST":
        try:
            image_services.delete_image(ctx, image_id)
        except errors.Forbidden as exc:
            return error_page(request, exc)
        messages.success(request, f"Image {image.name or image.id} deleted.")
        return redirect("/images/")
    return render(request, "dashboard/confirm_simple.html", {
        "title": f"Delete image {image.name or image.id}?",
        "question": "Servers already booted from it keep running; new ones cannot use it.",
        "button": "Delete image",
        "cancel": f"/images/{image.id}/",
    })
