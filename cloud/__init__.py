"""Kumo's control plane: one Django project, one app per domain."""

from .celery import app as celery_app

__all__ = ("celery_app",)
