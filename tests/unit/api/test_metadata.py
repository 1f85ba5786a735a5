"""The metadata service's control-plane half (cloud/api/metadata.py, cloud/compute/metadata.py,
cloud/enrollment/metadata_senders.py): a host's proxy asks /metadata/<path> for the guest at a
(network, source address), signed; the answers have OpenStack's and EC2's shapes, a forged or
missing signature gets 403, an address nobody holds 404. The proxy itself, with real namespaces:
tests/integration/test_metadata_proxy.py."""

from __future__ import annotations

import base64
import json
import time
import uuid

import pytest
from django.test import Client
from django.utils import timezone

from cloud.enrollment.host_credentials import secret_of
from cloud.enrollment.models import HostCredential
from cloud.network.models import FloatingIp, Network, Port, Subnet
from compute_agent import config_drive
from compute_agent import messages as msg
from tests.factories import make_instance

pytestmark = pytest.mark.django_db

SHARED = "shared-metadata-secret-for-tests"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKumoKumoKumoKumoKumoKumoKumoKumoKumoKumo test@kumo"
USER_DATA = "#!/bin/sh\necho hello from user data\n"


@pytest.fixture(autouse=True)
def _secret(settings):
    settings.KUMO_METADATA_SECRET = SHARED
    settings.KUMO_REQUIRE_HOST_CREDENTIALS = False


@pytest.fixture
def net():
    network = Network.objects.create(name="net1", segmentation_id=1001, mtu=1450)
    Subnet.objects.create(network=network, cidr="192.168.5.0/24", gateway_ip="192.168.5.1",
                          dns_nameservers=["192.0.2.53"],
                          host_routes=[{"destination": "172.16.0.0/12",
                                        "nexthop": "192.168.5.254"}])
    return network


def _port(network: Network, instance, address: str, **kw) -> Port:
    return Port.objects.create(
        network=network, device_id=str(instance.uuid), device_owner="compute:nova",
        mac_address=f"fa:16:3e:00:01:{Port.objects.count():02x}",
        project=instance.project,
        fixed_ips=[{"subnet_id": str(network.subnets.first().id), "ip_address": address}], **kw)


@pytest.fixture
def vm(net):
    instance = make_instance("web one", host="compute-1", hostname="web-one", key_name="mykey",
                             key_data=KEY, availability_zone="nova", metadata={"role": "web"},
                             user_data=base64.b64encode(USER_DATA.encode()).decode(),
                             image_ref="0c0c0c0c-0000-4000-8000-000000000001")
    _port(net, instance, "192.168.5.10")
    return instance


def ask(path: str, network, address: str, *, secret: str = SHARED, host: str = "",
        stamp: int | None = None, signed_path: str | None = None, method: str = "get"):
    stamp = int(time.time()) if stamp is None else stamp
    signature = msg.metadata_signature(secret, host, str(network), address,
                                       signed_path or path, str(stamp))
    headers = {
        "HTTP_X_KUMO_NETWORK_ID": str(network), "HTTP_X_KUMO_SOURCE_ADDRESS": address,
        "HTTP_X_KUMO_HOST": host, "HTTP_X_KUMO_TIMESTAMP": str(stamp),
        "HTTP_X_KUMO_SIGNATURE": signature,
    }
    return getattr(Client(), method)("/metadata" + path, **headers)


def test_meta_data_json_is_the_guests_own_as_on_its_config_drive(net, vm) -> None:
    response = ask("/openstack/latest/meta_data.json", net.id, "192.168.5.10")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    data = response.json()
    assert data["uuid"] == str(vm.uuid) and data["hostname"] == "web-one"
    assert data["public_keys"] == {"mykey": KEY}
    assert data["keys"] == [{"name": "mykey", "type": "ssh", "data": KEY}]
    assert data["meta"] == {"role": "web"} and data["availability_zone"] == "nova"
    assert data["project_id"] == str(vm.project_id) and data["launch_index"] == 0
    assert len(base64.b64decode(data["random_seed"])) == 512 and data["devices"] == []
    # Every key of the config drive's meta_data.json, with the same value.
    request = msg.SpawnRequest(
        request_id="r", instance_uuid=str(vm.uuid), name=vm.display_name, hostname="web-one",
        vcpus=1, memory_mb=1, root_gb=1, image=None, key_data=KEY, key_name="mykey",
        metadata={"role": "web"}, project_id=str(vm.project_id), availability_zone="nova")
    drive = config_drive.meta_data(request)
    assert {k: data[k] for k in drive} == drive
    # Any dated version answers the same; the listings name them.
    dated = ask("/openstack/2013-10-17/meta_data.json", net.id, "192.168.5.10").json()
    assert dated["uuid"] == str(vm.uuid)
    versions = ask("/openstack", net.id, "192.168.5.10").content.decode().splitlines()
    assert versions[-1] == "latest" and "2012-08-10" in versions
    names = ask("/openstack/latest", net.id, "192.168.5.10").content.decode().splitlines()
    assert set(names) == {"meta_data.json", "network_data.json", "vendor_data.json",
                          "vendor_data2.json", "user_data"}


def test_user_data_comes_decoded_and_is_404_when_there_is_none(net, vm) -> None:
    response = ask("/openstack/latest/user_data", net.id, "192.168.5.10")
    assert response.status_code == 200 and response.content == USER_DATA.encode()
    assert ask("/latest/user-data", net.id, "192.168.5.10").content == USER_DATA.encode()
    bare = make_instance("bare", host="compute-1")
    _port(net, bare, "192.168.5.11")
    assert ask("/openstack/latest/user_data", net.id, "192.168.5.11").status_code == 404
    assert ask("/latest/user-data", net.id, "192.168.5.11").status_code == 404
    names = ask("/openstack/latest", net.id, "192.168.5.11").content.decode().splitlines()
    assert "user_data" not in names


def test_network_and_vendor_data(net, vm) -> None:
    data = ask("/openstack/latest/network_data.json", net.id, "192.168.5.10").json()
    (link,) = data["links"]
    port = Port.objects.get(device_id=str(vm.uuid))
    assert (link["ethernet_mac_address"], link["mtu"], link["vif_id"]) == \
        (port.mac_address, 1450, str(port.id))
    (network,) = data["networks"]
    assert (network["type"], network["ip_address"], network["netmask"], network["link"]) == \
        ("ipv4", "192.168.5.10", "255.255.255.0", link["id"])
    assert network["routes"] == [
        {"network": "172.16.0.0", "netmask": "255.240.0.0", "gateway": "192.168.5.254"},
        {"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "192.168.5.1"}]
    assert data["services"] == [{"type": "dns", "address": "192.0.2.53"}]
    for name in ("vendor_data.json", "vendor_data2.json"):
        assert ask(f"/openstack/latest/{name}", net.id, "192.168.5.10").json() == {}


def test_ec2_meta_data(net, vm) -> None:
    def text(path: str) -> str:
        response = ask(path, net.id, "192.168.5.10")
        assert response.status_code == 200, (path, response.status_code)
        return response.content.decode()

    listing = text("/latest/meta-data/").splitlines()
    assert {"instance-id", "hostname", "local-ipv4", "public-ipv4", "public-keys/", "ami-id",
            "placement/"} <= set(listing)
    assert text("/latest/meta-data/hostname") == "web-one"
    assert text("/latest/meta-data/local-ipv4") == "192.168.5.10"
    assert text("/latest/meta-data/instance-id") == f"i-{vm.uuid.hex[:17]}"
    assert text("/latest/meta-data/ami-id") == f"ami-{uuid.UUID(vm.image_ref).hex[:17]}"
    assert text("/latest/meta-data/placement/availability-zone") == "nova"
    assert text("/latest/meta-data/public-keys/") == "0=mykey"
    assert text("/latest/meta-data/public-keys/0/openssh-key") == KEY
    assert text("/2009-04-04/meta-data/local-ipv4") == "192.168.5.10"
    assert text("/latest/meta-data/public-ipv4") == ""
    assert text("/latest") .splitlines() == ["meta-data/", "user-data"]
    assert ask("/latest/meta-data/nothing", net.id, "192.168.5.10").status_code == 404


def test_public_ipv4_is_the_floating_ip(net, vm) -> None:
    public = Network.objects.create(name="public", external=True, network_type="flat",
                                    physical_network="public")
    floating_port = Port.objects.create(network=public, device_owner="network:floatingip",
                                        mac_address="fa:16:3e:00:09:01",
                                        fixed_ips=[{"ip_address": "172.24.4.20"}])
    port = Port.objects.get(device_id=str(vm.uuid))
    FloatingIp.objects.create(floating_network=public, floating_port=floating_port,
                              floating_ip_address="172.24.4.20", port=port,
                              fixed_ip_address="192.168.5.10")
    response = ask("/latest/meta-data/public-ipv4", net.id, "192.168.5.10")
    assert response.content == b"172.24.4.20"


def test_the_source_address_and_network_decide_who_asks(net, vm) -> None:
    other = make_instance("other", host="compute-2", hostname="other")
    _port(net, other, "192.168.5.11")
    first = ask("/openstack/latest/meta_data.json", net.id, "192.168.5.10").json()
    second = ask("/openstack/latest/meta_data.json", net.id, "192.168.5.11").json()
    assert (first["uuid"], second["uuid"]) == (str(vm.uuid), str(other.uuid))
    assert "public_keys" not in second
    # An address nobody holds, the same address on another network, a deleted instance: 404.
    assert ask("/openstack/latest/meta_data.json", net.id, "192.168.5.99").status_code == 404
    elsewhere = Network.objects.create(name="net2", segmentation_id=1002)
    Subnet.objects.create(network=elsewhere, cidr="192.168.5.0/24")
    assert ask("/openstack/latest/meta_data.json", elsewhere.id,
               "192.168.5.10").status_code == 404
    other.deleted = True
    other.save()
    assert ask("/openstack/latest/meta_data.json", net.id, "192.168.5.11").status_code == 404
    # The DHCP server's own port is no instance.
    Port.objects.create(network=net, device_id="dhcp-compute-1", device_owner="network:dhcp",
                        mac_address="fa:16:3e:00:09:02",
                        fixed_ips=[{"ip_address": "192.168.5.2"}])
    assert ask("/openstack/latest/meta_data.json", net.id, "192.168.5.2").status_code == 404


def test_without_a_valid_host_signature_the_answer_is_403(net, vm, settings) -> None:
    path = "/openstack/latest/meta_data.json"
    # No headers at all (a guest or anyone reaching the internal URL directly).
    assert Client().get("/metadata" + path).status_code == 403
    # Forged: a wrong secret; a signature for another address or path; a stale timestamp.
    assert ask(path, net.id, "192.168.5.10", secret="guessed").status_code == 403
    stamp = int(time.time())
    forged = ask(path, net.id, "192.168.5.10", stamp=stamp)
    assert forged.status_code == 200
    headers = {"HTTP_X_KUMO_NETWORK_ID": str(net.id), "HTTP_X_KUMO_SOURCE_ADDRESS": "192.168.5.10",
               "HTTP_X_KUMO_HOST": "", "HTTP_X_KUMO_TIMESTAMP": str(stamp),
               "HTTP_X_KUMO_SIGNATURE": msg.metadata_signature(
                   SHARED, "", str(net.id), "192.168.5.99", path, str(stamp))}
    assert Client().get("/metadata" + path, **headers).status_code == 403
    assert ask(path, net.id, "192.168.5.10", signed_path="/latest/user-data").status_code == 403
    assert ask(path, net.id, "192.168.5.10", stamp=stamp - 3600).status_code == 403
    # Claiming to be a host that never joined.
    assert ask(path, net.id, "192.168.5.10", host="compute-1").status_code == 403
    # Only reads.
    assert ask(path, net.id, "192.168.5.10", method="post").status_code == 405
    # Hosts without their own credential are refused when the operator requires credentials,
    # and when no shared secret is set.
    settings.KUMO_REQUIRE_HOST_CREDENTIALS = True
    assert ask(path, net.id, "192.168.5.10").status_code == 403
    settings.KUMO_REQUIRE_HOST_CREDENTIALS = False
    settings.KUMO_METADATA_SECRET = ""
    assert ask(path, net.id, "192.168.5.10", secret="").status_code == 403


def test_a_joined_host_signs_with_its_own_secret_and_speaks_for_its_own_guests(net, vm) -> None:
    mine = HostCredential.objects.create(host="compute-1", broker="fake", broker_user="u1",
                                         secret_salt="a" * 32, joined_at=timezone.now())
    theirs = HostCredential.objects.create(host="compute-2", broker="fake", broker_user="u2",
                                           secret_salt="b" * 32, joined_at=timezone.now())
    path = "/openstack/latest/meta_data.json"
    ok = ask(path, net.id, "192.168.5.10", secret=secret_of(mine), host="compute-1")
    assert ok.status_code == 200 and ok.json()["uuid"] == str(vm.uuid)
    # Another host's secret under this host's name does not verify.
    assert ask(path, net.id, "192.168.5.10", secret=secret_of(theirs),
               host="compute-1").status_code == 403
    # compute-2 is a host, but vm does not run there.
    assert ask(path, net.id, "192.168.5.10", secret=secret_of(theirs),
               host="compute-2").status_code == 404


def test_an_address_another_project_may_also_send_from_gets_no_answer(net, vm) -> None:
    from cloud.identity.models import Project

    stranger = Project.objects.create(name="stranger")
    Port.objects.create(network=net, device_id="x", device_owner="compute:nova",
                        mac_address="fa:16:3e:00:09:03", project=stranger,
                        fixed_ips=[{"ip_address": "192.168.5.50"}],
                        allowed_address_pairs=[{"ip_address": "192.168.5.0/28"}])
    path = "/openstack/latest/meta_data.json"
    assert ask(path, net.id, "192.168.5.10").status_code == 404
    # A pair of the instance's own project is no one else's: answered.
    Port.objects.filter(project=stranger).update(project=vm.project)
    assert ask(path, net.id, "192.168.5.10").status_code == 200


def test_neither_user_data_nor_keys_are_logged(net, vm, caplog) -> None:
    caplog.set_level("DEBUG")
    for path in ("/openstack/latest/user_data", "/openstack/latest/meta_data.json",
                 "/latest/meta-data/public-keys/0/openssh-key"):
        assert ask(path, net.id, "192.168.5.10").status_code == 200
    assert "hello from user data" not in caplog.text and "AAAAC3Nza" not in caplog.text
    assert json.dumps(str(vm.uuid))[1:-1] in caplog.text
