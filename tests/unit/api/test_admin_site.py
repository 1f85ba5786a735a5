"""Every model is reachable in the Django admin, and its pages render."""

import pytest
from django.apps import apps
from django.contrib import admin
from django.test import Client
from django.urls import reverse

from cloud.identity.models import User

KUMO_APPS = {"identity", "compute", "scheduler", "images", "network"}


def _kumo_models():
    return [m for m in apps.get_models() if m._meta.app_label in KUMO_APPS]


def test_every_model_is_registered():
    missing = [m.__name__ for m in _kumo_models() if not admin.site.is_registered(m)]
    assert missing == []


@pytest.mark.django_db
def test_changelists_render_for_a_superuser():
    User.objects.create_superuser("root-admin", "pw-for-admin-test")
    client = Client()
    client.force_login(User.objects.get(name="root-admin"))
    for model in _kumo_models():
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        assert client.get(url).status_code == 200, url
