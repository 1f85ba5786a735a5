"""Rescue, shelve and backup in the instance menus: offered where their state rules allow, with the
backup's form, and carried out by the same services as the API."""

from __future__ import annotations

import pytest

from cloud.images.models import Image
from tests.factories import make_server

from .conftest import signed_in

pytestmark = pytest.mark.django_db


def test_an_active_instance_offers_rescue_shelve_and_backup(member, image):
    vm = make_server(member, "vm1", image_ref=str(image.id))
    table = signed_in(member).get("/instances/").content.decode()
    for name in ("rescue", "shelve", "backup"):
        assert f"/instances/{vm.uuid}/do/{name}" in table, name
    for name in ("unrescue", "unshelve", "shelve_offload"):
        assert f"/instances/{vm.uuid}/do/{name}" not in table, name


def test_a_rescued_or_offloaded_instance_offers_its_way_back(member, image):
    rescued = make_server(member, "vm1", image_ref=str(image.id), vm_state="rescued")
    offloaded = make_server(member, "vm2", image_ref=str(image.id), vm_state="shelved_offloaded",
                            host=None, node=None)
    table = signed_in(member).get("/instances/").content.decode()
    assert f"/instances/{rescued.uuid}/do/unrescue" in table
    assert f"/instances/{rescued.uuid}/do/rescue" not in table
    assert f"/instances/{offloaded.uuid}/do/unshelve" in table
    assert f"/instances/{offloaded.uuid}/do/shelve" not in table


def test_the_backup_form_starts_a_backup_with_its_rotation(member, image, sent):
    vm = make_server(member, "vm1", image_ref=str(image.id))
    client = signed_in(member)
    dialog = client.get(f"/instances/{vm.uuid}/do/backup").content.decode()
    assert "Backups to keep" in dialog and "vm1-backup" in dialog
    response = client.post(f"/instances/{vm.uuid}/do/backup",
                           {"name": "nightly", "backup_type": "daily", "rotation": "3"})
    assert response.status_code == 302
    vm.refresh_from_db()
    assert (vm.task_state, vm.backup_rotation) == ("image_backup", 3)
    backup = Image.objects.get(name="nightly")
    assert backup.properties["backup_type"] == "daily"
    assert sent[-1].name == "compute.backup"


def test_rescue_from_the_menu_uses_the_instances_own_image_unless_one_is_chosen(
    member, image, sent
):
    vm = make_server(member, "vm1", image_ref=str(image.id))
    client = signed_in(member)
    response = client.post(f"/instances/{vm.uuid}/do/rescue", {"rescue_image_ref": ""})
    assert response.status_code == 302
    vm.refresh_from_db()
    assert vm.task_state == "rescuing"
    assert sent[-1].args[0]["image"]["id"] == str(image.id)
