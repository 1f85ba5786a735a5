"""Rows and requests the unit tests share, made straight in the database or sent through the API.

No scheduler runs in unit tests, so a server only becomes ACTIVE, gets a host or an address when a
test says so. Personas and the broker recorder are fixtures in tests/conftest.py.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from cloud.compute import claims, states
from cloud.compute.models import COMPUTE_BINARY, ComputeNode, Instance, InstanceAction, Service
from cloud.identity.models import Project, User
from cloud.network import security_groups
from cloud.network.models import Network, Port, Subnet
from cloud.scheduler.host_state import HostState, load_host_states
from tests.personas import Persona

V = "/compute/v2.1"


def owner() -> tuple[Project, User]:
    project = Project.objects.get_or_create(name="alpha")[0]
    user = User.objects.get_or_create(name="alice")[0]
    return project, user


def make_node(
    host: str = "compute-1",
    *,
    vcpus: int = 4,
    memory_mb: int = 4096,
    local_gb: int = 40,
    cpu_ratio: float = 1.0,
    ram_ratio: float = 1.0,
    disk_ratio: float = 1.0,
    last_seen_up: datetime | None = None,
    disabled: bool = False,
    hypervisor_type: str | None = None,
) -> ComputeNode:
    service = Service.objects.create(
        host=host,
        binary=COMPUTE_BINARY,
        topic=f"compute.{host}",
        disabled=disabled,
        last_seen_up=last_seen_up or timezone.now(),
    )
    return ComputeNode.objects.create(
        service=service,
        host=host,
        hypervisor_hostname=f"{host}.local",
        vcpus=vcpus,
        memory_mb=memory_mb,
        local_gb=local_gb,
        cpu_allocation_ratio=cpu_ratio,
        ram_allocation_ratio=ram_ratio,
        disk_allocation_ratio=disk_ratio,
        **({"hypervisor_type": hypervisor_type} if hypervisor_type else {}),
    )


def make_instance(
    name: str = "vm",
    *,
    vcpus: int = 1,
    memory_mb: int = 1024,
    root_gb: int = 10,
    ephemeral_gb: int = 0,
    task_state: str | None = states.SCHEDULING,
    action: str | None = "create",
    **fields: Any,
) -> Instance:
    project, user = owner()
    instance = Instance.objects.create(
        display_name=name,
        project=project,
        user=user,
        vcpus=vcpus,
        memory_mb=memory_mb,
        root_gb=root_gb,
        ephemeral_gb=ephemeral_gb,
        task_state=task_state,
        **fields,
    )
    if action:
        InstanceAction.objects.create(
            instance=instance,
            action=action,
            request_id="req-test",
            user_id=user.pk,
            project_id=project.pk,
        )
    return instance


def claim(instance: Instance, state: HostState) -> bool:
    """Claim on the node a (possibly stale) scheduler snapshot names, as the scheduler does."""
    return claims.claim(instance, host=state.host, node=state.node, node_id=state.node_id)


def host_state(node: ComputeNode) -> HostState:
    return next(h for h in load_host_states() if h.node_id == node.pk)


def make_server(owner: Persona, name: str = "vm1", **fields) -> Instance:
    """A server as the database holds it; its host (compute1 unless `host=`) is up, as a host
    with servers usually is: its compute service has just reported (`host_up(…, False)` to take
    it down)."""
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
    if values["host"]:
        host_up(values["host"])
    return Instance.objects.create(**values)


def host_up(host: str, up: bool = True) -> Service:
    """The host's compute service, seen up just now, or silent for an hour (`up=False`)."""
    seen = timezone.now() - (timedelta(0) if up else timedelta(hours=1))
    service, _ = Service.objects.update_or_create(
        host=host, binary=COMPUTE_BINARY, defaults={"last_seen_up": seen})
    return service


def migratable_hosts(count: int) -> dict[int, ComputeNode]:
    """Hosts compute-1..count that take migrations (a migration URI and an address each), up,
    each with 8 vCPUs, 4 GiB and 100 GB and the same CPU: what the migration and drain tests move
    guests between."""
    nodes = {}
    for i in range(1, count + 1):
        nodes[i] = ComputeNode.objects.create(
            service=host_up(f"compute-{i}"), host=f"compute-{i}",
            hypervisor_hostname=f"compute-{i}", vcpus=8, memory_mb=4096, local_gb=100,
            hypervisor_type="QEMU", hypervisor_version=7002000,
            cpu_info={"arch": "x86_64", "features": ["sse2"]},
            migration_uri=f"qemu+tcp://10.77.0.1{i}/system", host_ip=f"10.77.0.1{i}")
    return nodes


def give_address(instance: Instance, network_name: str = "private", addr: str = "10.0.0.10") -> Port:
    network = Network.objects.filter(name=network_name).first()
    if network is None:
        network = Network.objects.create(name=network_name, shared=True)
        Subnet.objects.create(network=network, cidr="10.0.0.0/24", gateway_ip="10.0.0.1")
    port = Port.objects.create(
        network=network,
        project_id=instance.project_id,
        device_id=str(instance.uuid),
        device_owner="compute:nova",
        mac_address=f"fa:16:3e:00:00:{Port.objects.count():02x}",
        fixed_ips=[{"subnet_id": str(network.subnets.first().id), "ip_address": addr}],
    )
    # As a server made through the API: its port in the project's default security group.
    port.security_groups.set([security_groups.default_group(str(instance.project_id))])
    return port


def make_network(name: str, project: Project | None, cidr: str = "10.0.0.0/24", **kw) -> Network:
    network = Network.objects.create(name=name, project=project, **kw)
    net_prefix = cidr.rsplit(".", 1)[0]
    Subnet.objects.create(
        network=network,
        name=f"{name}-subnet",
        project=project,
        cidr=cidr,
        gateway_ip=f"{net_prefix}.1",
    )
    return network


def boot(api: Any, image: Any, hints: dict | None = None, hint_key: str = "os:scheduler_hints",
         *, name: str = "vm", flavor: str = "1", version: str = "2.37", **server: Any) -> Any:
    """POST /servers for one server of flavor `flavor` from `image`, with no network."""
    body: dict[str, Any] = {"server": {"name": name, "imageRef": str(image.id), "flavorRef": flavor,
                                       "networks": "none", **server}}
    if hints is not None:
        body[hint_key] = hints
    return api.post(f"{V}/servers", body, version=version)
