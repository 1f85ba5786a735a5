"""Servers made straight in the database, for tests of the per-server endpoints: no scheduler runs
in unit tests, so a server only becomes ACTIVE (or gets an address) when a test says so."""

from __future__ import annotations

from cloud.compute.models import Instance
from cloud.network.models import Network, Port, Subnet
from tests.personas import Persona

V = "/compute/v2.1"


def make_server(owner: Persona, name: str = "vm1", **fields) -> Instance:
    values = {
        "display_name": name,
        "project": owner.project,
        "user": owner.user,
        "vcpus": 1,
        "memory_mb": 128,
        "root_gb": 1,
        "flavor_snapshot": {"id": "1", "name": "m1.tiny", "vcpus": 1, "ram": 128, "disk": 1,
                            "ephemeral": 0, "swap": 0, "extra_specs": {}},
        "vm_state": "active",
        "task_state": None,
        "power_state": "running",
        "host": "compute1",
        "node": "compute1",
    }
    values.update(fields)
    return Instance.objects.create(**values)


def give_address(instance: Instance, network_name: str = "private", addr: str = "10.0.0.10") -> Port:
    network = Network.objects.filter(name=network_name).first()
    if network is None:
        network = Network.objects.create(name=network_name, shared=True)
        Subnet.objects.create(network=network, cidr="10.0.0.0/24", gateway_ip="10.0.0.1")
    return Port.objects.create(
        network=network,
        project_id=instance.project_id,
        device_id=str(instance.uuid),
        device_owner="compute:nova",
        mac_address=f"fa:16:3e:00:00:{Port.objects.count():02x}",
        fixed_ips=[{"subnet_id": str(network.subnets.first().id), "ip_address": addr}],
    )
