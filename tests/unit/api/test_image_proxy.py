"""Nova's image proxy below 2.36: the image API's images as Compute shows them."""

import pytest

from cloud.images.models import Image

V = "/compute/v2.1"


@pytest.fixture
def snapshot(member):
    return Image.objects.create(name="snap", status="saving", disk_format="qcow2",
                                container_format="bare", owner=member.project, min_ram=96,
                                min_disk=1, properties={"image_type": "test", "instance_uuid": "x"})


def test_an_image_shows_with_nova_status_progress_and_metadata(member, api_as, snapshot):
    body = api_as(member).get(f"{V}/images/{snapshot.id}").json()["image"]
    assert (body["status"], body["progress"], body["minRam"], body["minDisk"]) == ("SAVING", 50, 96, 1)
    assert body["metadata"]["image_type"] == "test" and body["server"]["id"] == "x"
    listed = api_as(member).get(f"{V}/images/detail").json()["images"]
    assert [i["id"] for i in listed] == [str(snapshot.id)]


def test_the_proxy_is_gone_from_236_and_foreign_images_are_404(member, other, api_as, snapshot):
    assert api_as(member).get(f"{V}/images/{snapshot.id}", version="2.36").status_code == 404
    assert api_as(other).get(f"{V}/images/{snapshot.id}").status_code == 404
    assert api_as(other).delete(f"{V}/images/{snapshot.id}").status_code == 404
    assert api_as(member).delete(f"{V}/images/{snapshot.id}").status_code == 204
    assert api_as(member).get(f"{V}/images/{snapshot.id}").status_code == 404
