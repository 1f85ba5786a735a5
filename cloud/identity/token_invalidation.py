"""Which identity changes make remembered token validations stale (cloud/identity/token_cache.py):
every write to an identity table that a validation reads, caught by Django's model signals, so a
new code path that revokes, disables or removes a role cannot forget to say so.

Every model of the identity app counts (the auto-created tables of its many-to-many fields too:
group members, an application credential's roles), except the writes that change nothing another
token depends on: issuing a token, deleting an expired one (the hourly purge), and a login
stamping the user's last_login. No code writes identity rows with QuerySet.update() (which sends
no signal); a bulk delete sends one per row.
"""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db.models import Model, signals
from django.utils import timezone

from . import token_cache

# Limits and the service catalogue are identity's tables too, but no token validation reads them.
_IRRELEVANT = frozenset({"Quota", "UserQuota", "Credential", "Region", "Service", "Endpoint"})


def _changes_nothing(sender: type[Model], instance: Model, update_fields: Any) -> bool:
    if sender.__name__ == "Token" and instance._state.adding:
        return True  # a new token; other tokens do not depend on it
    return sender.__name__ == "User" and update_fields is not None and set(update_fields) == {
        "last_login"}


def _before_save(sender: type[Model], instance: Model, update_fields: Any = None,
                 raw: bool = False, **_: Any) -> None:
    if not raw and not _changes_nothing(sender, instance, update_fields):
        token_cache.before_change()


def _after_save(sender: type[Model], instance: Model, created: bool = False,
                update_fields: Any = None, raw: bool = False, **_: Any) -> None:
    if raw or (sender.__name__ == "Token" and created):
        return
    if not _changes_nothing(sender, instance, update_fields):
        token_cache.after_change()


def _expired_token(sender: type[Model], instance: Model) -> bool:
    # The hourly purge deletes thousands: none can be remembered (expiry is checked on every use).
    return sender.__name__ == "Token" and instance.expires_at <= timezone.now()


def _before_delete(sender: type[Model], instance: Model, **_: Any) -> None:
    if not _expired_token(sender, instance):
        token_cache.before_change()


def _after_delete(sender: type[Model], instance: Model, **_: Any) -> None:
    if not _expired_token(sender, instance):
        token_cache.after_change()


def _m2m_changed(action: str, **_: Any) -> None:
    if action.startswith("pre_"):
        token_cache.before_change()
    else:
        token_cache.after_change()


def connect(app: AppConfig) -> None:
    for model in app.get_models(include_auto_created=True):
        if model.__name__ in _IRRELEVANT:
            continue
        uid = f"identity.token_cache.{model.__name__}"
        signals.pre_save.connect(_before_save, sender=model, dispatch_uid=f"{uid}.pre_save")
        signals.post_save.connect(_after_save, sender=model, dispatch_uid=f"{uid}.post_save")
        signals.pre_delete.connect(_before_delete, sender=model, dispatch_uid=f"{uid}.pre_delete")
        signals.post_delete.connect(_after_delete, sender=model,
                                    dispatch_uid=f"{uid}.post_delete")
    for model in app.get_models():
        for field in model._meta.many_to_many:
            if field.remote_field.through._meta.auto_created:
                signals.m2m_changed.connect(
                    _m2m_changed, sender=field.remote_field.through,
                    dispatch_uid=f"identity.token_cache.m2m.{model.__name__}.{field.name}")
