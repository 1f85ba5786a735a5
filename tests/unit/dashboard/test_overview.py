import pytest
from django.test import Client

from cloud.compute.models import Instance
from tests.personas import PASSWORD, make_persona


@pytest.mark.django_db
def test_sign_in_and_see_only_your_projects_instances():
    bob = make_persona("bob", "alpha", ["member"])
    eve = make_persona("eve", "beta", ["member"])
    for persona, name in ((bob, "bobs-vm"), (eve, "eves-vm")):
        Instance.objects.create(display_name=name, project=persona.project, user=persona.user,
                                vcpus=1, memory_mb=128, root_gb=1)
    client = Client()
    assert client.get("/").status_code == 302  # signed out: to the sign-in page
    response = client.post("/login/", {"username": "bob", "password": PASSWORD})
    assert response.status_code == 302
    page = client.get("/").content.decode()
    assert "bobs-vm" in page and "eves-vm" not in page
    assert "Hypervisors" not in page
