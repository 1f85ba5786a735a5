"""Filters and weighers are named by dotted path in settings, so an operator can change the list."""

from __future__ import annotations

from django.conf import settings
from django.utils.module_loading import import_string

from .filters import HostFilter
from .weighers import HostWeigher


def load_filters() -> list[HostFilter]:
    return [import_string(path)() for path in settings.KUMO_SCHEDULER_FILTERS]


def load_weighers() -> list[HostWeigher]:
    return [import_string(path)() for path in settings.KUMO_SCHEDULER_WEIGHERS]
