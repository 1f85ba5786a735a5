"""apply_host_report and the heartbeats: services and nodes upserted, claims left alone."""

from __future__ import annotations

import pytest

from cloud.compute.hosts import record_heartbeat
from cloud.compute.models import ComputeNode, Service
from cloud.conductor import tasks
from cloud.conductor.host_reports import apply_host_report
from compute_agent import messages as msg

pytestmark = pytest.mark.django_db


def report(**changes) -> msg.HostReport:
    fields = {
        "host": "compute-1",
        "hypervisor_type": "QEMU",
        "hypervisor_version": 8002000,
        "hypervisor_hostname": "compute-1.local",
        "host_ip": "10.0.0.11",
        "vcpus": 8,
        "memory_mb": 16384,
        "local_gb": 200,
        "cpu_info": {"arch": "x86_64"},
        "domains": [msg.DomainState(uuid="d-1", power_state=msg.POWER_RUNNING)],
    }
    fields.update(changes)
    return msg.HostReport(**fields)


def test_first_report_registers_the_compute_service_and_its_node(settings):
    settings.KUMO_CPU_ALLOCATION_RATIO = 16.0
    apply_host_report(report())

    service = Service.objects.get(host="compute-1", binary="nova-compute")
    assert (service.topic, service.report_count) == ("compute.compute-1", 1)
    assert service.last_seen_up is not None
    node = ComputeNode.objects.get(host="compute-1")
    assert node.service_id == service.pk
    assert (node.vcpus, node.memory_mb, node.local_gb) == (8, 16384, 200)
    assert (node.hypervisor_type, node.hypervisor_version, node.host_ip) == (
        "QEMU",
        8002000,
        "10.0.0.11",
    )
    assert node.cpu_allocation_ratio == 16.0
    assert node.domains == [{"uuid": "d-1", "power_state": "running"}]


def test_later_reports_update_capacity_but_never_the_claimed_counters_or_ratios(settings):
    apply_host_report(report())
    ComputeNode.objects.filter(host="compute-1").update(
        vcpus_used=3, memory_mb_used=3072, local_gb_used=30, cpu_allocation_ratio=2.0
    )
    settings.KUMO_CPU_ALLOCATION_RATIO = 16.0

    apply_host_report(report(vcpus=12, domains=[]))

    node = ComputeNode.objects.get(host="compute-1")
    assert node.vcpus == 12 and node.domains == []
    assert (node.vcpus_used, node.memory_mb_used, node.local_gb_used) == (3, 3072, 30)
    assert node.cpu_allocation_ratio == 2.0
    assert Service.objects.get(host="compute-1").report_count == 2


def test_a_report_keeps_the_hosts_boot_time_and_load_and_an_older_agents_leaves_them_unknown():
    apply_host_report(report(boot_time=1_700_000_000.5, load_average=[0.5, 0.25, 0.125]))
    node = ComputeNode.objects.get(host="compute-1")
    assert node.booted_at.timestamp() == 1_700_000_000.5
    assert node.load_average == [0.5, 0.25, 0.125]
    apply_host_report(msg.HostReport.from_dict(
        {k: v for k, v in report().to_dict().items() if k not in ("boot_time", "load_average")}))
    node.refresh_from_db()
    assert (node.booted_at, node.load_average) == (None, [])


def test_a_report_keeps_an_operators_disabled_flag():
    apply_host_report(report())
    Service.objects.filter(host="compute-1").update(disabled=True, disabled_reason="maintenance")
    apply_host_report(report())
    assert Service.objects.get(host="compute-1").disabled


def test_heartbeat_creates_then_counts():
    record_heartbeat("ctl-1", "nova-conductor", "conductor")
    first = Service.objects.get(host="ctl-1", binary="nova-conductor")
    record_heartbeat("ctl-1", "nova-conductor", "conductor")
    second = Service.objects.get(host="ctl-1", binary="nova-conductor")
    assert (first.report_count, second.report_count) == (1, 2)
    assert second.last_seen_up >= first.last_seen_up


def test_host_report_task_parses_the_contract_dict():
    tasks.host_report(report().to_dict())
    assert ComputeNode.objects.filter(host="compute-1").exists()


def test_conductor_alive_task_beats_for_this_host(monkeypatch):
    monkeypatch.setattr("socket.gethostname", lambda: "ctl-9")
    tasks.report_alive()
    assert Service.objects.get(host="ctl-9", binary="nova-conductor").report_count == 1


def test_scheduler_alive_task_beats_for_this_host(monkeypatch):
    from cloud.scheduler import tasks as scheduler_tasks

    monkeypatch.setattr("socket.gethostname", lambda: "sched-9")
    scheduler_tasks.report_alive()
    scheduler_tasks.report_alive()
    service = Service.objects.get(host="sched-9", binary="nova-scheduler")
    assert (service.topic, service.report_count) == ("scheduler", 2)


# --- domains without an instance of their host are destroyed


def _aged(instance, seconds=600):
    from datetime import timedelta

    from django.utils import timezone

    from cloud.compute.models import Instance

    Instance.objects.filter(pk=instance.pk).update(
        updated_at=timezone.now() - timedelta(seconds=seconds))


def _domains(*instances, extra=()):
    return [msg.DomainState(uuid=str(i.uuid), power_state=msg.POWER_RUNNING) for i in instances] + [
        msg.DomainState(uuid=u, power_state=msg.POWER_RUNNING) for u in extra]


def test_a_host_back_with_domains_of_deleted_or_moved_instances_is_told_to_destroy_them(sent):
    from cloud.conductor.host_reports import destroy_orphans
    from tests.factories import make_instance

    deleted = make_instance("deleted", host="compute-1", deleted=True, task_state=None)
    moved = make_instance("moved", host="compute-2", task_state=None)
    mine = make_instance("mine", host="compute-1", task_state=None)
    for instance in (deleted, moved, mine):
        _aged(instance)
    stranger = "6f0e2b54-0000-4000-8000-00000000beef"  # a guest Kumo never made: never touched

    asked = destroy_orphans(report(domains=_domains(deleted, moved, mine, extra=[stranger])))

    assert sorted(asked) == sorted([str(deleted.uuid), str(moved.uuid)])
    assert sorted((s.queue, s.payload["instance_uuid"]) for s in sent) == sorted(
        [("compute.compute-1", str(deleted.uuid)), ("compute.compute-1", str(moved.uuid))])


def test_a_guest_in_the_middle_of_a_move_is_no_orphan_on_either_of_its_hosts(sent):
    """A cold-moved guest kept on its source for a revert, and a live copy arriving on its
    destination, are the instance's, until the move is over."""
    from cloud.compute.models import Migration
    from cloud.conductor.host_reports import destroy_orphans
    from tests.factories import make_instance

    kept = make_instance("kept", host="compute-2", task_state=None, vm_state="resized")
    arriving = make_instance("arriving", host="compute-2", task_state="migrating")
    done = make_instance("done", host="compute-2", task_state=None)
    for instance in (kept, arriving, done):
        _aged(instance)
    Migration.objects.create(instance=kept, migration_type="migration", status="finished",
                             source_compute="compute-1", dest_compute="compute-2")
    Migration.objects.create(instance=arriving, migration_type="live-migration",
                             status="running", source_compute="compute-2",
                             dest_compute="compute-1")
    Migration.objects.create(instance=done, migration_type="migration", status="confirmed",
                             source_compute="compute-1", dest_compute="compute-2")

    asked = destroy_orphans(report(domains=_domains(kept, arriving, done)))
    assert asked == [str(done.uuid)]  # confirmed: its source's copy goes


def test_a_domain_whose_instance_just_changed_is_left_for_the_next_report(sent):
    from cloud.conductor.host_reports import destroy_orphans
    from tests.factories import make_instance

    rescheduled = make_instance("just-moved", host=None)  # changed a moment ago
    assert destroy_orphans(report(domains=_domains(rescheduled))) == [] and sent == []


def test_the_conductor_checks_every_report_for_orphans(sent):
    from tests.factories import make_instance

    deleted = make_instance("deleted", host="compute-1", deleted=True, task_state=None)
    _aged(deleted)
    tasks.host_report(report(domains=_domains(deleted)).to_dict())
    assert [s.name for s in sent] == [msg.TASK_DESTROY]
