"""Guests that change outside Kumo are recorded from the host's report."""

from datetime import timedelta

import pytest
from django.utils import timezone

from cloud.compute.models import Instance
from cloud.conductor.power_sync import sync_power_states
from compute_agent import messages as msg
from tests.personas import make_persona


@pytest.fixture
def owner(db):
    return make_persona("owner", "alpha", ["member"])


def _server(owner, **fields):
    values = {"display_name": "vm", "project": owner.project, "user": owner.user, "vcpus": 1,
              "memory_mb": 128, "root_gb": 1, "vm_state": "active", "power_state": "running",
              "host": "h1"}
    values.update(fields)
    server = Instance.objects.create(**values)
    Instance.objects.filter(pk=server.pk).update(updated_at=timezone.now() - timedelta(minutes=5))
    return server


def _report(*domains):
    return msg.HostReport(host="h1", hypervisor_type="QEMU", hypervisor_version=1,
                          hypervisor_hostname="h1", host_ip="127.0.0.1", vcpus=1, memory_mb=1,
                          local_gb=1, domains=[msg.DomainState(uuid=u, power_state=p) for u, p in domains])


def test_a_guest_that_shut_itself_down_becomes_shutoff(owner):
    server = _server(owner)
    assert sync_power_states(_report((str(server.uuid), msg.POWER_SHUTDOWN))) == 1
    server.refresh_from_db()
    assert (server.status, server.power_state) == ("SHUTOFF", "shutdown")


def test_without_instance_ha_a_crashed_guest_becomes_shutoff_and_a_vanished_one_error(
        owner, settings):
    # No restart budget: what Nova does (instance HA is tests/unit/conductor/test_guest_recovery).
    settings.KUMO_GUEST_RESTART_BUDGET = 0
    crashed, vanished = _server(owner), _server(owner)
    sync_power_states(_report((str(crashed.uuid), msg.POWER_CRASHED)))
    crashed.refresh_from_db()
    vanished.refresh_from_db()
    assert crashed.status == "SHUTOFF"
    assert vanished.status == "ERROR" and "gone" in vanished.faults.first().message


def test_instances_busy_or_just_changed_are_left_alone(owner):
    busy = _server(owner, task_state="powering-off")
    fresh = _server(owner)
    Instance.objects.filter(pk=fresh.pk).update(updated_at=timezone.now())
    assert sync_power_states(_report()) == 0
    busy.refresh_from_db()
    assert busy.vm_state == "active" and busy.task_state == "powering-off"


def test_a_matching_report_changes_nothing(owner):
    server = _server(owner)
    assert sync_power_states(_report((str(server.uuid), msg.POWER_RUNNING))) == 0
    paused = _server(owner, vm_state="paused", power_state="running")
    assert sync_power_states(_report((str(server.uuid), msg.POWER_RUNNING),
                                     (str(paused.uuid), msg.POWER_PAUSED))) == 1
    paused.refresh_from_db()
    assert (paused.vm_state, paused.power_state) == ("paused", "paused")


def test_a_stopped_server_whose_domain_is_gone_stays_stopped_and_starts_again(
        owner, api_as, sent):
    """libvirt's test driver after its agent restarted, or a host that rebooted and lost the
    domain: the server stays SHUTOFF (not ERROR), and a start defines it again through a hard
    reboot carrying the whole guest, which the host's 'rebooted' finishes."""
    from cloud.conductor.instance_events import apply_instance_event
    from tests.factories import host_up

    host_up("h1")
    server = _server(owner, vm_state="stopped", power_state="shutdown")
    sync_power_states(_report())
    server.refresh_from_db()
    assert (server.status, server.power_state) == ("SHUTOFF", "nostate")
    assert not server.faults.exists()

    answer = api_as(owner).post(f"/compute/v2.1/servers/{server.uuid}/action", {"os-start": None})
    assert answer.status_code == 202, answer.content
    (reboot,) = sent
    assert reboot.name == msg.TASK_REBOOT and reboot.payload["reboot_type"] == msg.REBOOT_HARD
    assert reboot.payload["spawn"]["instance_uuid"] == str(server.uuid)
    apply_instance_event(msg.InstanceEvent(request_id="r", instance_uuid=str(server.uuid),
                                           host="h1", event=msg.EVENT_REBOOTED,
                                           power_state=msg.POWER_RUNNING))
    server.refresh_from_db()
    assert (server.status, server.task_state) == ("ACTIVE", None)


def test_a_stopped_server_with_its_domain_is_started_as_before(owner, api_as, sent):
    from tests.factories import host_up

    host_up("h1")
    server = _server(owner, vm_state="stopped", power_state="shutdown")
    assert api_as(owner).post(f"/compute/v2.1/servers/{server.uuid}/action",
                              {"os-start": None}).status_code == 202
    assert [s.name for s in sent] == [msg.TASK_START]
