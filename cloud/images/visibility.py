"""Which images a project sees, as Glance decides it.

By id, a project sees every public and community image, every image it owns, and every `shared`
image it is a member of, whatever its answer (pending, accepted, rejected): that is how it can
look at an image before accepting it. An admin sees every image.

Its image list is narrower. Without a `visibility` filter it holds the public images, its own,
and the shared images whose membership is in the `member_status` asked for (accepted by
default): an image offered to a project stays out of its list until the project accepts it.
Other projects' community images are listed only when asked for (`visibility=community` or
`all`). Membership counts only while the image's visibility is `shared`: an owner who makes it
private again takes it back from every member.
"""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Q, QuerySet

from cloud import errors
from cloud.identity.context import RequestContext

from .models import MEMBER_STATUSES, VISIBILITIES, Image, ImageMember

ALL = "all"


def _member_of(ctx: RequestContext, status: str | None = None) -> Q:
    """Shared images the caller's project is a member of (in `status`, any when None)."""
    members = ImageMember.objects.filter(image=OuterRef("pk"), project_id=ctx.project_id)
    if status is not None:
        members = members.filter(status=status)
    return Q(visibility="shared") & Q(Exists(members))


def visible_images(ctx: RequestContext) -> QuerySet[Image]:
    """Every image the caller's project may see by id (all of them for an admin)."""
    images = Image.objects.all()
    if ctx.is_admin:
        return images
    return images.filter(
        Q(visibility__in=["public", "community"]) | Q(owner_id=ctx.project_id) | _member_of(ctx)
    )


def visible_image(ctx: RequestContext, image_id: object) -> Image | None:
    """The image with this id if the caller's project may see it by id (visible_images' rule),
    else None. The row is read by its key and the rule applied to it here, a query for the
    membership only for someone else's shared image: the rule as one SQL condition (an OR over an
    EXISTS) cost the web process more CPU to compile than the read itself, on every boot."""
    found = next(iter(Image.objects.filter(pk=image_id).order_by()[:1]), None)
    if found is None or ctx.is_admin:
        return found
    if found.visibility in ("public", "community") or found.owner_id == ctx.project_id:
        return found
    if found.visibility == "shared" and ImageMember.objects.filter(
            image_id=found.pk, project_id=ctx.project_id).exists():
        return found
    return None


def member_status_param(value: str | None) -> str | None:
    """The `member_status` filter as a membership status, None for all; 400 when unknown."""
    if value is None:
        return "accepted"
    if value == ALL:
        return None
    if value not in MEMBER_STATUSES:
        raise errors.BadRequest(
            f"Invalid status value: {value}; use one of {', '.join([*MEMBER_STATUSES, ALL])}."
        )
    return value


def listed_images(
    ctx: RequestContext, visibility: str | None, member_status: str | None
) -> QuerySet[Image]:
    """The images the caller's list holds for a `visibility` and a `member_status` filter (the
    query parameters as sent, None when absent)."""
    if visibility is not None and visibility != ALL and visibility not in VISIBILITIES:
        raise errors.BadRequest(f"Invalid visibility value: {visibility}")
    status = member_status_param(member_status)
    images = Image.objects.all()
    if ctx.is_admin:
        if visibility is None or visibility == ALL:
            return images
        return images.filter(visibility=visibility)
    own = Q(owner_id=ctx.project_id)
    shared_with_me = _member_of(ctx, status)
    if visibility is None:
        return images.filter(Q(visibility="public") | own | shared_with_me)
    if visibility == ALL:
        return images.filter(Q(visibility__in=["public", "community"]) | own | shared_with_me)
    if visibility == "shared":
        return images.filter(Q(visibility="shared") & (own | shared_with_me))
    if visibility == "private":
        return images.filter(own, visibility="private")
    return images.filter(visibility=visibility)  # public, community: everyone's
