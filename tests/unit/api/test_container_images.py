"""Issue 19: an image of a container (createImage, createBackup, shelve) is queued as what its host
uploads, a gzip'd tar of its root filesystem (raw, compressed) that boots only as a container
(hypervisor_type=lxc), and the host is asked for it; a VM's stays a qcow2 of its disk."""

from __future__ import annotations

import pytest

from cloud.images.models import Image
from compute_agent import messages as msg
from tests.factories import V

BODIES = {
    "createImage": ({"createImage": {"name": "snap", "metadata": {
        "hypervisor_type": "qemu", "note": "kept"}}}, msg.TASK_SNAPSHOT, "snapshot"),
    "createBackup": ({"createBackup": {"name": "bk", "backup_type": "daily", "rotation": 2,
                                       "metadata": {"hypervisor_type": "qemu", "note": "kept"}}},
                     msg.TASK_BACKUP, "backup"),
}


@pytest.mark.parametrize("action", list(BODIES))
def test_an_image_of_a_container_is_its_root_filesystems_tar_for_containers(
    member, api_as, container, ct_image, sent, action
):
    body, task, image_type = BODIES[action]
    response = api_as(member).post(f"{V}/servers/{container.uuid}/action", body, version="2.45")
    assert response.status_code == 202, response.content
    image = Image.objects.get(pk=response.json()["image_id"])
    assert (image.status, image.disk_format, image.container_format) == (
        "queued", "raw", "compressed")
    props = image.properties
    # A user's metadata cannot make the tar look like a disk for a qemu host.
    assert props["hypervisor_type"] == "lxc" and props["note"] == "kept"
    assert (props["image_type"], props["instance_uuid"], props["base_image_ref"]) == (
        image_type, str(container.uuid), str(ct_image.id))
    ((name, (payload,), queue),) = sent
    assert (name, queue, payload["image_id"]) == (task, "compute.lxc-1", str(image.id))
    container.refresh_from_db()
    assert container.task_state is not None


@pytest.mark.parametrize("action", list(BODIES))
def test_an_image_of_a_vm_is_still_a_qcow2_of_its_disk(member, api_as, vm, sent, action):
    body, task, _ = BODIES[action]
    response = api_as(member).post(f"{V}/servers/{vm.uuid}/action", body, version="2.45")
    assert response.status_code == 202, response.content
    image = Image.objects.get(pk=response.json()["image_id"])
    assert (image.disk_format, image.container_format) == ("qcow2", "bare")
    assert image.properties["hypervisor_type"] == "qemu"  # the user's, untouched on a VM
    assert [s.name for s in sent] == [task]


def test_the_legacy_create_image_answers_with_the_images_location(member, api_as, container,
                                                                  sent):
    response = api_as(member).post(f"{V}/servers/{container.uuid}/action",
                                   {"createImage": {"name": "old"}}, version="2.1")
    assert response.status_code == 202 and not response.content
    image = Image.objects.get(name="old")
    assert response["Location"].endswith(f"/images/{image.id}")
    assert image.properties["hypervisor_type"] == "lxc"


def test_a_shelved_container_is_saved_as_its_root_filesystems_tar(member, api_as, container,
                                                                  sent):
    response = api_as(member).post(f"{V}/servers/{container.uuid}/action", {"shelve": None},
                                   version="2.60")
    assert response.status_code == 202, response.content
    container.refresh_from_db()
    image = Image.objects.get(pk=container.shelved_image_id)
    assert (image.name, image.disk_format, image.container_format) == (
        "ct1-shelved", "raw", "compressed")
    assert image.properties["hypervisor_type"] == "lxc"
    ((name, (payload,), queue),) = sent
    assert (name, queue, payload["image_id"]) == (msg.TASK_SHELVE, "compute.lxc-1",
                                                  str(image.id))


@pytest.mark.parametrize(("server", "metadata"), [
    ("vm", {"hypervisor_type": "lxc"}), ("vm", {"hw_vm_mode": "exe"}),
    ("container", {"hw_vm_mode": "hvm"}), ("container", {"hypervisor_type": "qemu"})])
def test_a_user_cannot_give_a_saved_image_the_other_kind(member, api_as, vm, container, sent,
                                                         server, metadata):
    """Its kind is the server's: a VM's disk never goes to container hosts, and a container's
    tar is not left with contradicting properties that no host would take."""
    target = {"vm": vm, "container": container}[server]
    response = api_as(member).post(
        f"{V}/servers/{target.uuid}/action",
        {"createImage": {"name": "kinded", "metadata": {**metadata, "purpose": "kept"}}},
        version="2.45")
    assert response.status_code == 202, response.content
    image = Image.objects.get(pk=response.json()["image_id"])
    assert image.properties["purpose"] == "kept"
    kind_props = {k: image.properties.get(k) for k in
                  ("hypervisor_type", "img_hv_type", "hw_vm_mode", "vm_mode")}
    expected = {"hypervisor_type": "lxc"} if server == "container" else {}
    assert {k: v for k, v in kind_props.items() if v is not None} == expected
