"""A compute host's heartbeat (HostReport), applied: its service row, what its hypervisor has, and
each running domain's console port. The *_used columns are left alone: they belong to claims.
Safe to apply twice; power states are synced from the same report by power_sync.py.

After an instance task a host sends only the domains it touched (DomainsChanged, contract 1.10):
their console ports, power states and orphan check are applied to those instances alone, and the
node row (its `domains` among them) stays the snapshot of the last whole report, which is what the
reconciler and the build timeout compare against. What a boot costs here thus does not grow with
the guests a host runs; the heartbeat's whole report still finds drift and orphans."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from cloud import rpc
from cloud.compute import network_plane, states
from cloud.compute.hosts import record_heartbeat
from cloud.compute.models import COMPUTE_BINARY, ComputeNode, Instance, Migration, Service
from cloud.ids import canonical_uuid
from compute_agent import messages as msg

log = logging.getLogger(__name__)

# A host's whole report (its heartbeat), or only the domains a task touched.
Report = msg.HostReport | msg.DomainsChanged


def apply_host_report(report: msg.HostReport, own: list[Instance] | None = None) -> None:
    """Record the host's heartbeat and what its hypervisor has. The *_used columns are left alone:
    they belong to claims. `own`: own_instances(report), if already read."""
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
            "migration_uri": report.migration_uri,
            "network_driver": report.network_driver,
            "booted_at": (datetime.fromtimestamp(report.boot_time, UTC) if report.boot_time > 0
                          else None),
            "load_average": report.load_average,
            "updated_at": timezone.now(),
        }
        _record_console_ports(report, own)
        before = ComputeNode.objects.filter(host=report.host).values_list(
            "host_ip", "network_driver").first()
        joined = before != (report.host_ip, report.network_driver) and \
            report.network_driver == network_plane.LINUXBRIDGE
        _upsert_node(report, service, reported)
        if joined:
            # A new tunnel end: the other hosts' VXLAN flood lists must include it.
            network_plane.host_joined(report.host)


# What the three steps of a report read of the host's instances: console ports here, the power
# sync's comparison (power_sync._COMPARED), and their uuids for the orphan check.
_OWN_FIELDS = ("uuid", "console_port", "console_socket", "vm_state", "power_state", "task_state",
               "updated_at", "host")


def own_instances(report: Report) -> list[Instance]:
    """The host's live instances (of a DomainsChanged: those it lists), read once for the report's
    console ports, power sync and orphan check, which read them three times before."""
    own = Instance.objects.filter(host=report.host, deleted=False)
    if isinstance(report, msg.DomainsChanged):
        own = own.filter(uuid__in=_listed(report))
    return list(own.order_by().only(*_OWN_FIELDS))


def apply_domains_changed(report: msg.DomainsChanged, own: list[Instance] | None = None) -> None:
    """The console ports of the domains a task touched; nothing of the others, nor of the node.
    `own`: own_instances(report), if already read. No savepoint inside the event's transaction
    (conductor.tasks): nothing here catches an error."""
    with transaction.atomic(savepoint=False):
        _record_console_ports(report, own)


def _upsert_node(report: msg.HostReport, service: Service, reported: dict) -> None:
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


def _record_console_ports(report: Report, own: list[Instance] | None = None) -> None:
    """Store each running domain's VNC port on its instance (console tokens are checked against
    it); instances of this host that reported none lose theirs (of a DomainsChanged: those it
    lists). One read of those instances, then a write only for those whose port changed."""
    ports = {canonical_uuid(d.uuid): d.vnc_port for d in report.domains if d.vnc_port > 0}
    sockets = {canonical_uuid(d.uuid): d.vnc_socket for d in report.domains if d.vnc_socket}
    changed: dict[tuple[int | None, str], list] = {}
    for instance in own if own is not None else own_instances(report):
        wanted = (ports.get(str(instance.uuid)), sockets.get(str(instance.uuid), ""))
        if wanted != (instance.console_port, instance.console_socket):
            changed.setdefault(wanted, []).append(instance.uuid)
    # Grouped by the values they take: usually one UPDATE (the new guest), none when nothing moved.
    for (port, socket), uuids in changed.items():
        Instance.objects.filter(host=report.host, deleted=False, uuid__in=uuids).update(
            console_port=port, console_socket=socket)


def _listed(report: msg.DomainsChanged) -> list[str]:
    return [u for u in (canonical_uuid(d.uuid) for d in report.domains) if u]


def destroy_orphans(report: Report, own: list[Instance] | None = None) -> list[str]:
    """Ask the host to destroy the domains it runs for instances that are not its own any more:
    deleted (perhaps locally, while the host was down), or rescheduled to another host. No domain
    of Kumo's runs without a live instance of that host, hence without a claim. Domains named by
    no instance of Kumo's are never touched (a host may run other guests of its own). Rows changed
    within KUMO_POWER_SYNC_GRACE seconds are left alone: a report gathered before a change may
    arrive after it. Returns the uuids it asked to destroy."""
    if isinstance(report, msg.DomainsChanged):
        # Only the domains still there, looked up directly (a task touched one or a few).
        uuids = [u for u in (canonical_uuid(d.uuid) for d in report.domains
                             if d.power_state != msg.POWER_NOSTATE) if u]
        if own is not None:
            # The host's own live instances are never orphans (own_instances read them): after a
            # boot, nothing is left to ask about.
            mine = {str(i.uuid) for i in own}
            uuids = [u for u in uuids if u not in mine]
    else:
        reported = [u for u in (canonical_uuid(d.uuid) for d in report.domains) if u]
        # The host's own live instances are never orphans: one read of them by host (indexed)
        # leaves the rare domain to look up, rather than asking about every domain.
        live = ({str(i.uuid) for i in own} if own is not None else
                {str(u) for u in Instance.objects.filter(host=report.host, deleted=False)
                 .values_list("uuid", flat=True)})
        uuids = [u for u in reported if u not in live]
    if not uuids:
        return []
    grace = timedelta(seconds=getattr(settings, "KUMO_POWER_SYNC_GRACE", 20))
    # A move under way has the guest on both of its hosts: the destination receiving a live copy
    # (a paused domain), the source keeping a cold-moved guest for a revert. Neither is an orphan
    # until the move is over (a finished cold move: until it is confirmed or reverted).
    moving = Migration.objects.filter(
        Q(source_compute=report.host) | Q(dest_compute=report.host),
        instance_id__in=uuids, status__in=states.MIGRATION_IN_PROGRESS,
    ).values_list("instance_id", flat=True)
    orphans = [
        str(uuid) for uuid in Instance.objects.filter(
            Q(deleted=True) | ~Q(host=report.host) | Q(host__isnull=True),
            uuid__in=uuids, updated_at__lt=timezone.now() - grace,
        ).exclude(deleted=False, uuid__in=moving).values_list("uuid", flat=True)
    ]
    with transaction.atomic():
        for uuid in orphans:
            log.warning("host %s runs domain %s, which is not its instance: destroying it",
                        report.host, uuid)
            rpc.destroy(report.host, msg.DestroyRequest(request_id=f"req-orphan-{uuid[:8]}",
                                                        instance_uuid=uuid))
    return orphans
