"""Rows the scheduler and conductor tests share: one project and user, nodes, instances, actions,
and a recorder for what cloud.rpc would put on the broker."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone

from cloud.compute import claims, states
from cloud.compute.models import ComputeNode, Instance, InstanceAction, Service
from cloud.identity.models import Project, User
from cloud.scheduler.host_state import HostState, load_host_states


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
) -> ComputeNode:
    service = Service.objects.create(
        host=host,
        binary="nova-compute",
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


