"""Server tags (Nova's os-server-tags, 2.26): short strings a user hangs on a server to find it again
(`GET /servers?tags=…`). A tag is 1–60 characters without "/" or ","; a server holds at most 50.

Tags change only while the server is settled (active, stopped, paused or suspended), as in Nova;
each change holds the server's row lock, so the 50-tag cap holds under concurrent requests.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from cloud import errors, events

from . import states
from .models import Instance, InstanceTag
from .server_rows import Among
from .transitions import locked_row

MAX_TAGS = 50
MAX_TAG_LENGTH = 60
# The vm_states in which Nova lets tags change.
_TAGGABLE = frozenset({states.ACTIVE, states.STOPPED, states.PAUSED, states.SUSPENDED})


def tag_problem(tag: object) -> str | None:
    """Why `tag` is not a valid tag, or None when it is."""
    if not isinstance(tag, str) or not tag:
        return "it must be a non-empty string"
    if len(tag) > MAX_TAG_LENGTH:
        return f"it is longer than {MAX_TAG_LENGTH} characters"
    if "/" in tag or "," in tag:
        return "it contains '/' or ','"
    return None


def validate_tag(tag: object) -> str:
    problem = tag_problem(tag)
    if problem is not None:
        raise errors.BadRequest(
            f"Tag '{tag}' is invalid. It must be a non empty string without characters '/' and "
            f"',' ({problem})."
        )
    assert isinstance(tag, str)
    return tag


def validate_tags(tags: Iterable[object]) -> list[str]:
    """A request's list of tags, each checked, duplicates dropped, at most MAX_TAGS."""
    unique = list(dict.fromkeys(validate_tag(t) for t in tags))
    if len(unique) > MAX_TAGS:
        raise errors.BadRequest(f"The number of tags exceeded the per-server limit {MAX_TAGS}")
    return unique


def tags_of(instance: Instance) -> list[str]:
    return list(instance.tags.order_by("tag").values_list("tag", flat=True))


def tags_by_server(uuids: Iterable[str]) -> dict[str, list[str]]:
    """uuid → its tags (sorted), for a page of servers in one query."""
    found: dict[str, list[str]] = {}
    rows = InstanceTag.objects.filter(Among("instance_id", list(uuids))).order_by("tag")
    for instance_id, tag in rows.values_list("instance_id", "tag"):
        found.setdefault(str(instance_id), []).append(tag)
    return found


def add_initial_tags(instance: Instance, tags: list[str]) -> None:
    """The tags a server is created with (2.52), inside the creating transaction."""
    InstanceTag.objects.bulk_create([InstanceTag(instance=instance, tag=t) for t in tags])


def _settled_row(instance: Instance, action: str) -> Instance:
    row = locked_row(instance)
    if row.vm_state not in _TAGGABLE or row.task_state == states.DELETING:
        raise errors.Conflict(
            f"Cannot '{action}' instance {row.uuid} while it is in vm_state {row.vm_state}"
        )
    return row


def _changed(row: Instance) -> None:
    # Tags are part of the server: changes-since and the dashboard see the change.
    Instance.objects.filter(pk=row.pk).update(updated_at=timezone.now())
    events.instance_changed(row.pk)


def add_tag(instance: Instance, tag: str) -> bool:
    """Hang `tag` on the server; True when it is new, False when the server had it already."""
    tag = validate_tag(tag)
    with transaction.atomic():
        row = _settled_row(instance, "update tag")
        existing = set(tags_of(row))
        if tag in existing:
            return False
        if len(existing) >= MAX_TAGS:
            raise errors.BadRequest(
                f"The number of tags exceeded the per-server limit {MAX_TAGS}"
            )
        InstanceTag.objects.create(instance=row, tag=tag)
        _changed(row)
    return True


def replace_tags(instance: Instance, tags: list[object]) -> list[str]:
    """Make `tags` the server's only tags; the tags it has after."""
    wanted = validate_tags(tags)
    with transaction.atomic():
        row = _settled_row(instance, "update tags")
        InstanceTag.objects.filter(instance=row).delete()
        add_initial_tags(row, wanted)
        _changed(row)
        return tags_of(row)


def remove_tag(instance: Instance, tag: str) -> None:
    with transaction.atomic():
        row = _settled_row(instance, "delete tag")
        deleted, _ = InstanceTag.objects.filter(instance=row, tag=tag).delete()
        if not deleted:
            raise errors.NotFound(f"Instance {row.uuid} has no tag '{tag}'")
        _changed(row)


def remove_all_tags(instance: Instance) -> None:
    with transaction.atomic():
        row = _settled_row(instance, "delete tags")
        InstanceTag.objects.filter(instance=row).delete()
        _changed(row)


def has_tag(instance: Instance, tag: str) -> bool:
    return instance.tags.filter(tag=tag).exists()
