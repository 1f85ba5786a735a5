"""The launch dialog: checked on the server as it is filled in, with the project's quota shown,
and launched through the same service as POST /servers."""

from __future__ import annotations

import base64

import pytest

from cloud.compute.models import Instance, KeyPair, ServerGroup
from cloud.identity.models import Quota
from cloud.network.models import Network, Subnet
from tests.factories import make_server

from .conftest import signed_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def network(db):
    net = Network.objects.create(name="private", shared=True)
    Subnet.objects.create(network=net, cidr="10.0.0.0/24", gateway_ip="10.0.0.1")
    return net


def _fields(image, flavor, **extra):
    return {"name": "web", "image": str(image.id), "flavor": flavor.flavorid, "network": "auto",
            "count": "1", **extra}


def test_the_dialog_offers_what_the_project_may_use(member, other, image, flavor, network):
    KeyPair.objects.create(user=member.user, name="mine", public_key="ssh-rsa AAA", fingerprint="f")
    KeyPair.objects.create(user=other.user, name="theirs", public_key="ssh-rsa AAA", fingerprint="f")
    ServerGroup.objects.create(name="apart", project=member.project, user=member.user,
                               policy="anti-affinity")
    page = signed_in(member).get("/instances/launch/").content.decode()
    for label in ("Name", "Image", "Flavor", "Network", "Key pair", "Availability zone",
                  "Server group", "User data", "Count"):
        assert f">{label}" in page, label
    assert "cirros" in page and "m1.tiny" in page and "private" in page
    assert "mine" in page and "theirs" not in page and "apart" in page


def test_every_field_has_a_label(member, image, flavor):
    import re

    page = signed_in(member).get("/instances/launch/").content.decode()
    ids = re.findall(r'<(?:input|select|textarea)[^>]* id="(id_[a-z_]+)"', page)
    assert ids
    for field_id in ids:
        assert f'for="{field_id}"' in page, field_id


def test_the_quota_is_shown_with_what_the_launch_adds(member, image, big_flavor):
    make_server(member, "old", vcpus=4, memory_mb=1024)
    response = signed_in(member).post("/instances/launch/check",
                                      _fields(image, big_flavor, count="2"))
    page = response.content.decode()
    assert response.status_code == 200
    # Defaults: 10 instances, 20 cores, 51200 MiB; one server of 4 vCPUs exists already.
    assert '<tr data-quota="cores"><td>vCPUs</td><td class="num">4</td><td class="num">+16</td>' in page
    assert "Over quota" not in page  # 4 + 16 = 20 fits exactly
    over = signed_in(member).post("/instances/launch/check", _fields(image, big_flavor, count="3"))
    assert "Over quota: vCPUs would be 28 of 20" in over.content.decode()


def test_a_launch_over_quota_is_refused_before_anything_is_created(member, image, flavor, sent):
    Quota.objects.create(project=member.project, resource="instances", hard_limit=1)
    response = signed_in(member).post("/instances/launch/", _fields(image, flavor, count="2"))
    assert response.status_code == 400
    assert "Over quota: Instances would be 2 of 1" in response.content.decode()
    assert not Instance.objects.exists() and not sent


def test_missing_and_malformed_fields_are_named(member, image, flavor):
    response = signed_in(member).post("/instances/launch/", {"name": "x" * 256, "count": "0"})
    page = response.content.decode()
    assert response.status_code == 400
    assert "at most 255 characters" in page
    assert page.count("This field is required.") == 1  # flavor
    assert "Choose an image, or a volume to boot from." in page
    assert "greater than or equal to 1" in page
    assert not Instance.objects.exists()


def test_a_launch_creates_the_instances_through_the_service(member, image, flavor, network, sent):
    group = ServerGroup.objects.create(name="apart", project=member.project, user=member.user,
                                       policy="anti-affinity")
    response = signed_in(member).post("/instances/launch/", _fields(
        image, flavor, count="2", user_data="#!/bin/sh\necho hi\n", server_group=str(group.uuid),
        networks=[str(network.id)],
    ))
    assert response.status_code == 302 and response["Location"] == "/instances/"
    created = list(Instance.objects.order_by("display_name"))
    assert [i.display_name for i in created] == ["web-1", "web-2"]
    assert base64.b64decode(created[0].user_data) == b"#!/bin/sh\necho hi\n"
    assert created[0].scheduler_hints == {"group": str(group.uuid)}
    assert created[0].requested_networks == [str(network.id)]
    assert group.members.count() == 2
    assert all(i.actions.filter(action="create").exists() for i in created)


def test_a_launch_from_the_dialog_closes_it_and_says_so(member, image, flavor, sent):
    response = signed_in(member).post("/instances/launch/", _fields(image, flavor),
                                      HTTP_HX_REQUEST="true")
    assert response.status_code == 204
    assert "Launching web" in response["HX-Trigger"]
    refused = signed_in(member).post("/instances/launch/", {"name": "x"}, HTTP_HX_REQUEST="true")
    assert refused.status_code == 200 and "This field is required" in refused.content.decode()


def test_a_service_refusal_lands_on_the_field_it_is_about(member, image, flavor, sent):
    response = signed_in(member).post(
        "/instances/launch/", _fields(image, flavor, availability_zone="")
    )
    assert response.status_code == 302
    image.status = "queued"
    image.save()
    page = signed_in(member).post("/instances/launch/", _fields(image, flavor)).content.decode()
    assert "Select a valid choice" in page  # a queued image is not offered at all


def test_a_reader_cannot_open_or_post_the_launch_dialog(reader, image, flavor, sent):
    client = signed_in(reader)
    assert client.get("/instances/launch/").status_code == 403
    assert client.post("/instances/launch/", _fields(image, flavor)).status_code == 403
    assert client.post("/instances/launch/check", _fields(image, flavor)).status_code == 403
    assert not Instance.objects.exists()


def _shown_errors(page: str, field: str) -> str:
    """The error block the check sends back for `field` (swapped into the form out of band)."""
    start = page.index(f'<div class="field-errors" id="errors-{field}" hx-swap-oob="true">')
    return page[start:page.index("</div>", start)]


def test_the_check_clears_an_error_once_its_field_is_corrected(member, image, flavor):
    client = signed_in(member)
    submitted = client.post("/instances/launch/", {"count": "1"}).content.decode()
    assert 'name="submitted"' in submitted  # the form remembers it was submitted
    assert submitted.count("This field is required.") == 2  # name, flavor
    assert "Choose an image, or a volume to boot from." in submitted
    corrected = client.post("/instances/launch/check", {
        "submitted": "1", "name": "web", "image": "", "flavor": "", "count": "1",
    }).content.decode()
    assert "This field is required." not in _shown_errors(corrected, "name")
    assert "Choose an image, or a volume to boot from." in _shown_errors(corrected, "image")
    assert "This field is required." in _shown_errors(corrected, "flavor")


def test_before_a_submit_only_the_fields_filled_in_are_judged(member, image, flavor):
    page = signed_in(member).post("/instances/launch/check", {
        "name": "x" * 256, "count": "1"}).content.decode()
    assert "at most 255 characters" in _shown_errors(page, "name")
    assert _shown_errors(page, "image").endswith('hx-swap-oob="true">')  # empty: not reached yet


def test_the_quota_preview_follows_the_count_as_it_is_typed(member, image, big_flavor):
    dialog = signed_in(member).get("/instances/launch/").content.decode()
    # Typing into the number field fires "input", not "change" (that waits for the field to blur).
    assert "input delay:400ms from:#launch-form" in dialog
    page = signed_in(member).post("/instances/launch/check",
                                  _fields(image, big_flavor, count="3")).content.decode()
    assert '<tr data-quota="instances"><td>Instances</td><td class="num">0</td><td class="num">+3' in page
    assert "Over quota: vCPUs would be 24 of 20" in _shown_errors(page, "flavor")


# --- boot from volume


@pytest.fixture
def volume_host(db):
    from cloud.conductor import volume_events
    from compute_agent import messages as msg

    volume_events.apply_volume_host_report(msg.VolumeHostReport(
        host="vol-1", backend="nbd", total_gb=100, free_gb=100))


def test_a_launch_can_boot_from_a_new_volume_made_from_the_image(member, image, flavor, sent,
                                                                  volume_host):
    from cloud.compute.models import BlockDeviceMapping
    from cloud.volumes.models import Volume
    from compute_agent import messages as msg

    response = signed_in(member).post("/instances/launch/", _fields(
        image, flavor, new_volume="on", volume_size="2", delete_on_termination="on"))
    assert response.status_code == 302, response.content.decode()[:2000]
    instance = Instance.objects.get(display_name="web")
    volume = Volume.objects.get()
    assert (volume.size, str(volume.image_id), volume.bootable) == (2, str(image.id), True)
    mapping = BlockDeviceMapping.objects.get(instance=instance)
    assert (mapping.boot_index, mapping.delete_on_termination, mapping.volume_id) == \
        (0, True, volume.id)
    assert instance.task_state == "block_device_mapping"
    assert [m.name for m in sent if m.name == msg.TASK_CREATE_VOLUME] == [msg.TASK_CREATE_VOLUME]


def test_a_launch_can_boot_from_an_existing_volume_and_needs_no_image(member, flavor, sent,
                                                                       volume_host):
    from cloud.compute.models import BlockDeviceMapping
    from cloud.volumes.models import Volume

    volume = Volume.objects.create(project=member.project, size=1, status="available",
                                   bootable=True, name="bootme", connection={
                                       "driver_volume_type": "nbd", "host": "10.0.0.9",
                                       "port": 10809, "export": "x"})
    Volume.objects.create(project=member.project, size=1, status="available", name="databag")
    page = signed_in(member).get("/instances/launch/").content.decode()
    assert "bootme" in page and "databag" not in page  # only bootable volumes are offered
    response = signed_in(member).post("/instances/launch/", {
        "name": "fromvol", "flavor": flavor.flavorid, "count": "1",
        "boot_volume": str(volume.id)})
    assert response.status_code == 302, response.content.decode()[:2000]
    instance = Instance.objects.get(display_name="fromvol")
    mapping = BlockDeviceMapping.objects.get(instance=instance)
    assert (mapping.boot_index, mapping.volume_id, mapping.delete_on_termination) == \
        (0, volume.id, False)
