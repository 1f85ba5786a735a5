"""People in a browser: the shared personas (tests/unit/api/conftest.py), signed in to the dashboard
with their project selected, and a few cloud objects made straight in the database."""

from __future__ import annotations

import pytest
from django.test import Client

from cloud.compute.models import Flavor
from cloud.dashboard.context import SESSION_KEY
from cloud.images.models import Image
from tests.factories import make_server  # noqa: F401 - used by the tests
from tests.personas import Persona

ORIGIN = "http://testserver"


def signed_in(persona: Persona) -> Client:
    client = Client()
    client.force_login(persona.user)
    session = client.session
    session[SESSION_KEY] = persona.project.pk
    session.save()
    return client


@pytest.fixture
def browser_as():
    return signed_in


@pytest.fixture(autouse=True)
def _in_memory_channel_layer(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


@pytest.fixture
def flavor(db) -> Flavor:
    return Flavor.objects.create(flavorid="1", name="m1.tiny", vcpus=1, memory_mb=128, root_gb=1)


@pytest.fixture
def big_flavor(db) -> Flavor:
    return Flavor.objects.create(flavorid="3", name="m1.big", vcpus=8, memory_mb=8192, root_gb=10)


@pytest.fixture
def image(db) -> Image:
    return Image.objects.create(name="cirros", status="active", disk_format="qcow2",
                                container_format="bare", visibility="public", size=1024)
