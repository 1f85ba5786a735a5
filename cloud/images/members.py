"""Sharing an image with other projects, as Glance's image members.

The owner of an image whose visibility is `shared` offers it to a project (a member, `pending`);
the member's project answers (`accepted`, `rejected`, or back to `pending`) and sees the image in
its list once accepted (cloud.images.visibility). Only the owner adds and removes members, and
only the member answers for itself: the owner cannot accept on its behalf. The owner sees every
membership of its image; a member sees only its own. Someone who cannot see the image gets 404,
as for any image.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from cloud import errors
from cloud.identity import policy
from cloud.identity.context import RequestContext
from cloud.identity.models import Project

from .images import get_image
from .models import MEMBER_STATUSES, Image, ImageMember

# Glance's image_member_quota.
MAX_MEMBERS = 128


def _authorize(ctx: RequestContext, action: str) -> None:
    if not policy.allowed(ctx, action):
        raise errors.Forbidden(f"Policy doesn't allow {action} to be performed.")


def _is_owner(ctx: RequestContext, image: Image) -> bool:
    return ctx.is_admin or image.owner_id == ctx.project_id


def _not_a_member(image: Image, member_id: str) -> errors.NotFound:
    return errors.NotFound(f"{member_id} is not a member of image {image.pk}.")


def list_members(ctx: RequestContext, image_id: object) -> QuerySet[ImageMember]:
    image = get_image(ctx, image_id)
    _authorize(ctx, "image:get_members")
    members = ImageMember.objects.filter(image=image)
    if not _is_owner(ctx, image):
        members = members.filter(project_id=ctx.project_id)
    return members


def get_member(ctx: RequestContext, image_id: object, member_id: str) -> ImageMember:
    image = get_image(ctx, image_id)
    _authorize(ctx, "image:get_member")
    member = ImageMember.objects.filter(image=image, project_id=member_id).first()
    if member is None or not (_is_owner(ctx, image) or member_id == ctx.project_id):
        raise _not_a_member(image, member_id)
    return member


def add_member(ctx: RequestContext, image_id: object, member_id: str) -> ImageMember:
    """Offer the image to project `member_id`: a pending membership."""
    image = get_image(ctx, image_id)
    _authorize(ctx, "image:add_member")
    if not _is_owner(ctx, image):
        raise errors.Forbidden("Only the owner of an image may add members to it.")
    if image.visibility != "shared":
        raise errors.Forbidden(
            f"Only shared images have members; image {image.pk} is {image.visibility}."
        )
    project = Project.objects.filter(pk=member_id).first()
    if project is None:
        raise errors.BadRequest(f"Invalid member {member_id}: no such project.")
    with transaction.atomic():
        # The image's row lock keeps two concurrent additions from passing the quota together.
        Image.objects.select_for_update().filter(pk=image.pk).first()
        if ImageMember.objects.filter(image=image, project=project).exists():
            raise errors.Conflict(f"Member {member_id} already associated with image {image.pk}.")
        if ImageMember.objects.filter(image=image).count() >= MAX_MEMBERS:
            raise errors.RequestTooLarge(
                f"Maximum number of members of an image exceeded: {MAX_MEMBERS}."
            )
        try:
            with transaction.atomic():
                return ImageMember.objects.create(image=image, project=project)
        except IntegrityError:
            raise errors.Conflict(
                f"Member {member_id} already associated with image {image.pk}."
            ) from None


def update_member(
    ctx: RequestContext, image_id: object, member_id: str, status: str
) -> ImageMember:
    """The member's answer: only the member's own project (or an admin) gives it."""
    image = get_image(ctx, image_id)
    _authorize(ctx, "image:modify_member")
    member = ImageMember.objects.filter(image=image, project_id=member_id).first()
    if member is None or not (_is_owner(ctx, image) or member_id == ctx.project_id):
        raise _not_a_member(image, member_id)
    if member_id != ctx.project_id and not ctx.is_admin:
        raise errors.Forbidden("Only the member itself may accept or reject a shared image.")
    if status not in MEMBER_STATUSES:
        raise errors.BadRequest(
            f"Invalid status {status!r}: use one of {', '.join(MEMBER_STATUSES)}."
        )
    member.status = status
    member.save(update_fields=["status", "updated_at"])
    return member


def delete_member(ctx: RequestContext, image_id: object, member_id: str) -> None:
    """End a membership: the owner's act, never the member's."""
    image = get_image(ctx, image_id)
    _authorize(ctx, "image:delete_member")
    member = ImageMember.objects.filter(image=image, project_id=member_id).first()
    if not _is_owner(ctx, image):
        if member is None or member_id != ctx.project_id:
            raise _not_a_member(image, member_id)
        raise errors.Forbidden("Only the owner of an image may remove its members.")
    if member is None:
        raise _not_a_member(image, member_id)
    member.delete()
