"""What compute looks like right now, for /metrics: instances by state, each host's status,
capacity and use, and the depth of every queue the control plane and the hosts read. Read at
scrape time (two queries and one broker connection), registered in ComputeConfig.ready()."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Count
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily, Metric

from cloud.metrics import queues
from compute_agent import messages as msg

from .hosts import host_status
from .models import ComputeNode, Instance

_MIB = 1024 * 1024
_GIB = 1024 * _MIB


def collect_state() -> Iterator[Metric]:
    instances = GaugeMetricFamily(
        "kumo_instances",
        "Servers that are not deleted, by vm_state and task_state (none: no task running).",
        labels=["vm_state", "task_state"],
    )
    rows = (
        Instance.objects.filter(deleted=False)
        .values_list("vm_state", "task_state")
        .annotate(n=Count("uuid"))
        .order_by()
    )
    for vm_state, task_state, count in sorted(rows, key=lambda r: (r[0], r[1] or "")):
        instances.add_metric([vm_state, task_state or "none"], count)
    yield instances
    yield from _hosts()


def _hosts() -> Iterator[Metric]:
    status = GaugeMetricFamily(
        "kumo_host_status",
        "1 for each compute host's status as os-services tells it: up, down (forced), "
        "maintenance (disabled) or unknown (no recent heartbeat).",
        labels=["host", "status"],
    )
    kinds = ["host", "kind"]
    vcpus = GaugeMetricFamily(
        "kumo_host_vcpus",
        "A host's vCPUs: total (the hardware), allocatable (total × cpu_allocation_ratio), "
        "used (claimed by instances and moves).",
        labels=kinds,
    )
    memory = GaugeMetricFamily(
        "kumo_host_memory_bytes", "A host's memory: total, allocatable, used (as for vCPUs).",
        labels=kinds,
    )
    disk = GaugeMetricFamily(
        "kumo_host_disk_bytes", "A host's local disk: total, allocatable, used (as for vCPUs).",
        labels=kinds,
    )
    now = timezone.now()
    for node in ComputeNode.objects.select_related("service").order_by("host"):
        status.add_metric([node.host, host_status(node.service, now).lower() or "unknown"], 1)
        for family, total, ratio, used, unit in (
            (vcpus, node.vcpus, node.cpu_allocation_ratio, node.vcpus_used, 1),
            (memory, node.memory_mb, node.ram_allocation_ratio, node.memory_mb_used, _MIB),
            (disk, node.local_gb, node.disk_allocation_ratio, node.local_gb_used, _GIB),
        ):
            family.add_metric([node.host, "total"], total * unit)
            family.add_metric([node.host, "allocatable"], total * ratio * unit)
            family.add_metric([node.host, "used"], used * unit)
    yield from (status, vcpus, memory, disk)


def collect_queues() -> Iterator[Metric]:
    hosts = ComputeNode.objects.order_by("host").values_list("host", flat=True)
    names = [msg.SCHEDULER_QUEUE, msg.CONDUCTOR_QUEUE, *(msg.compute_queue(h) for h in hosts)]
    yield queues.depth_family(names)
