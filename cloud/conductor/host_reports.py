"""A compute host's heartbeat (HostReport), applied: its service row, what its hypervisor has, and
each running domain's console port. The *_used columns are left alone: they belong to claims.
Safe to apply twice; power states are synced from the same report by power_sync.py."""

from __future__ import annotations

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from cloud.compute.hosts import record_heartbeat
from cloud.compute.models import COMPUTE_BINARY, ComputeNode, Instance
from compute_agent import messages as msg


def apply_host_report(report: msg.HostReport) -> None:
    """Record the host's heartbeat and what its hypervisor has. The *_used columns are left alone:
    they belong to claims."""
    with transaction.atomic():
        service = record_heartbeat(report.host, COMPUTE_BINARY, msg.compute_queue(report.host))
        reported = {
            "hypervisor_hostname": report.hypervisor_hostname,
            "hypervisor_type": report.hypervisor_type,
            "hypervisor_version": report.hypervisor_version,
            "host_ip": report.host_ip,
            "cpu_info": report.cpu_info,
            "vcpus": report.vcpus,
            "memory_mb": report.memory_mb,
            "local_gb": report.local_gb,
            "domains": [{"uuid": d.uuid, "power_state": d.power_state} for d in report.domains],
            "updated_at": timezone.now(),
        }
        _record_console_ports(report)
        if ComputeNode.objects.filter(host=report.host).update(**reported):
            return
        try:
            with transaction.atomic():
                ComputeNode.objects.create(
                    service=service,
                    host=report.host,
                    cpu_allocation_ratio=settings.KUMO_CPU_ALLOCATION_RATIO,
                    ram_allocation_ratio=settings.KUMO_RAM_ALLOCATION_RATIO,
                    disk_allocation_ratio=settings.KUMO_DISK_ALLOCATION_RATIO,
                    **reported,
                )
        except IntegrityError:
            ComputeNode.objects.filter(host=report.host).update(**reported)


def _record_console_ports(report: msg.HostReport) -> None:
    """Store each running domain's VNC port on its instance (console tokens are checked against
    it); instances of this host that reported none lose theirs. Only changed rows are written."""
    ports = {d.uuid: d.vnc_port for d in report.domains if d.vnc_port > 0}
    on_host = Instance.objects.filter(host=report.host, deleted=False)
    for uuid, port in ports.items():
        on_host.filter(uuid=uuid).exclude(console_port=port).update(console_port=port)
    on_host.filter(console_port__isnull=False).exclude(uuid__in=list(ports)).update(
        console_port=None
    )
