"""IPAM (cloud/network/ipam.py): addresses from a subnet's pools, never two ports on one address,
the gateway skipped, released addresses free again."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, connections

from cloud.identity.models import Project
from cloud.network import ipam
from cloud.network.models import Network, Port, Subnet
from tests.factories import make_network

pytestmark = pytest.mark.django_db



def test_allocations_are_distinct_and_skip_the_gateway(nets, member):
    network = nets["alpha"]
    ports = [ipam.allocate_port(network, member.project.id, f"vm-{i}") for i in range(3)]
    addresses = [p.fixed_ips[0]["ip_address"] for p in ports]
    assert addresses == ["10.2.0.2", "10.2.0.3", "10.2.0.4"]
    subnet_id = str(network.subnets.get().id)
    assert all(p.fixed_ips[0]["subnet_id"] == subnet_id for p in ports)
    macs = {p.mac_address for p in ports}
    assert len(macs) == 3 and all(m.startswith("fa:16:3e:") and len(m) == 17 for m in macs)


def test_release_frees_addresses_but_live_ones_are_never_reused(nets, member):
    network = nets["alpha"]
    first = ipam.allocate_port(network, member.project.id, "vm-1")
    second = ipam.allocate_port(network, member.project.id, "vm-2")
    assert ipam.release_ports("vm-1") == 1
    assert not Port.objects.filter(pk=first.pk).exists()
    third = ipam.allocate_port(network, member.project.id, "vm-3")
    fourth = ipam.allocate_port(network, member.project.id, "vm-4")
    live = [p.fixed_ips[0]["ip_address"] for p in (second, third, fourth)]
    assert len(set(live)) == 3
    assert third.fixed_ips[0]["ip_address"] == "10.2.0.2"  # the freed one
    assert ipam.release_ports("nothing-here") == 0
    with pytest.raises(ValueError):
        ipam.release_ports("")


def test_fixed_ip(nets, member):
    network = nets["alpha"]
    port = ipam.allocate_port(network, member.project.id, "vm-1", fixed_ip="10.2.0.50")
    assert port.fixed_ips[0]["ip_address"] == "10.2.0.50"
    with pytest.raises(ipam.AddressInUse):
        ipam.allocate_port(network, member.project.id, "vm-2", fixed_ip="10.2.0.50")
    for bad in ("10.2.0.1", "10.2.0.0", "10.2.0.255", "10.9.0.5", "not-an-ip"):
        with pytest.raises(ipam.InvalidAddress):
            ipam.allocate_port(network, member.project.id, "vm-2", fixed_ip=bad)
    automatic = ipam.allocate_port(network, member.project.id, "vm-3")
    assert automatic.fixed_ips[0]["ip_address"] == "10.2.0.2"


def test_exhaustion_and_stored_pools(member):
    network = Network.objects.create(name="tiny", project=member.project)
    Subnet.objects.create(
        network=network,
        cidr="192.168.5.0/24",
        gateway_ip="192.168.5.1",
        allocation_pools=[{"start": "192.168.5.10", "end": "192.168.5.11"}],
    )
    got = [ipam.allocate_port(network, member.project.id, f"vm-{i}") for i in range(2)]
    assert [p.fixed_ips[0]["ip_address"] for p in got] == ["192.168.5.10", "192.168.5.11"]
    with pytest.raises(ipam.NoFreeAddress):
        ipam.allocate_port(network, member.project.id, "vm-x")


def test_network_without_subnet(member):
    network = Network.objects.create(name="bare", project=member.project)
    with pytest.raises(ipam.NoSubnet):
        ipam.allocate_port(network, member.project.id, "vm")


def test_default_pools_around_a_middle_gateway(member):
    network = Network.objects.create(name="mid", project=member.project)
    subnet = Subnet.objects.create(network=network, cidr="10.5.0.0/29", gateway_ip="10.5.0.3")
    assert ipam.allocation_pools(subnet) == [
        {"start": "10.5.0.1", "end": "10.5.0.2"},
        {"start": "10.5.0.4", "end": "10.5.0.6"},
    ]


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="row locks need PostgreSQL; SQLite serialises writers"
)
@pytest.mark.django_db(transaction=True)
def test_concurrent_allocations_never_share_an_address():
    project = Project.objects.create(name="race")
    network = make_network("race-net", project, "10.7.0.0/24")
    start = threading.Barrier(8)

    def boot(n: int) -> str:
        try:
            start.wait()
            port = ipam.allocate_port(network, project.id, f"vm-{n}")
            return port.fixed_ips[0]["ip_address"]
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(boot, range(8)))  # re-raises any failure here
    assert len(results) == 8 and len(set(results)) == 8
