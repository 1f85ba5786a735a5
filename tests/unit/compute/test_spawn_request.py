"""build_spawn_request: what the agent receives, from the instance, image and port rows."""

from __future__ import annotations

import pytest

from cloud.compute.spawn import build_spawn_request
from cloud.images.models import Image
from cloud.network.models import Network, Port
from compute_agent import messages as msg
from tests.factories import make_instance, owner

pytestmark = pytest.mark.django_db


def test_carries_the_flavor_sizes_and_the_guest_data():
    instance = make_instance(
        "web one",
        vcpus=2,
        memory_mb=2048,
        root_gb=20,
        hostname="web-1",
        user_data="I2Nsb3VkLWNvbmZpZw==",
        key_data="ssh-ed25519 AAAA alice",
        metadata={"role": "web", "tier": 1},
    )
    request = build_spawn_request(instance, "req-7")
    assert (request.request_id, request.instance_uuid, request.name, request.hostname) == (
        "req-7",
        str(instance.uuid),
        "web one",
        "web-1",
    )
    assert (request.vcpus, request.memory_mb, request.root_gb) == (2, 2048, 20)
    assert request.user_data == "I2Nsb3VkLWNvbmZpZw=="
    assert request.key_data == "ssh-ed25519 AAAA alice"
    assert request.metadata == {"role": "web", "tier": "1"}
    assert request.image is None and request.networks == []


def test_makes_a_hostname_from_the_display_name_when_none_is_set():
    assert build_spawn_request(make_instance("My Server_01!"), "r").hostname == "my-server-01"


def test_describes_the_image_from_its_row():
    image = Image.objects.create(
        name="cirros", disk_format="qcow2", size=12345, checksum="0" * 32, status="active"
    )
    request = build_spawn_request(make_instance(image_ref=str(image.id)), "r")
    assert (request.image.id, request.image.checksum, request.image.disk_format) == (
        str(image.id), "0" * 32, "qcow2"
    )
    assert request.image.size == 12345
    assert request.image.url.endswith(f"/image/v2/images/{image.id}/file")


def test_passes_an_unknown_image_by_id_alone():
    request = build_spawn_request(make_instance(image_ref="not-a-uuid"), "r")
    assert request.image == msg.ImageRef(id="not-a-uuid")


def test_lists_the_ports_bound_to_the_instance():
    project, _ = owner()
    network = Network.objects.create(name="private", project=project)
    instance = make_instance()
    port = Port.objects.create(
        network=network,
        device_id=str(instance.uuid),
        mac_address="fa:16:3e:00:00:01",
        fixed_ips=[{"subnet_id": "s", "ip_address": "10.0.0.5"}],
    )
    Port.objects.create(network=network, device_id="someone-else", mac_address="fa:16:3e:00:00:02")

    request = build_spawn_request(instance, "r")

    assert request.networks == [
        msg.NetworkInfo(
            network_id=str(network.id),
            network_name="private",
            port_id=str(port.id),
            mac_address="fa:16:3e:00:00:01",
            ip_address="10.0.0.5",
            hostname=request.hostname,  # what DHCP hands the guest
        )
    ]
    assert request.hostname


def test_round_trips_through_the_message_contract():
    request = build_spawn_request(make_instance(image_ref="abc"), "r")
    assert msg.SpawnRequest.from_dict(request.to_dict()) == request
