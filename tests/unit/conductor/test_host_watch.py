"""The host watch's state machine with the fake fencing driver: detection, the partition guard,
fence failure, fence timeout, manual confirmation, recovery of HA servers only (through the
scheduler's evacuation, as the scheduler task would run it), and a host that returns."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from cloud import rpc
from cloud.compute import fencing, states
from cloud.compute import host_failures as hf
from cloud.compute.models import (
    Aggregate,
    AggregateHost,
    Allocation,
    HostFailure,
    Instance,
    Service,
)
from cloud.conductor import host_watch
from cloud.conductor.instance_events import apply_instance_event
from cloud.scheduler import tasks as scheduler_tasks
from compute_agent import messages as msg
from tests.factories import host_up, make_server, migratable_hosts

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fake_fencing(settings):
    settings.KUMO_FENCING_DRIVER = "fake"
    settings.KUMO_FENCING_HOSTS = {}
    settings.KUMO_HOST_FAILURE_AFTER = 25
    settings.KUMO_FENCE_ATTEMPTS = 3
    settings.KUMO_FENCE_RETRY_INTERVAL = 15
    fencing.FAKE.outcomes = [fencing.CONFIRMED]
    fencing.FAKE.calls.clear()
    return fencing.FAKE


@pytest.fixture
def hosts(db):
    return migratable_hosts(3)


def _server(owner, hosts, name, *, ha: bool, host: str = "compute-1") -> Instance:
    instance = make_server(owner, name, host=host, node=host, memory_mb=256,
                           metadata={"HA_Enabled": "True"} if ha else {})
    Allocation.objects.create(instance=instance, node=hosts[int(host[-1])], vcpus=1,
                              memory_mb=256, disk_gb=1)
    return instance


def _silence(host: str, seconds: float = 60) -> None:
    Service.objects.filter(host=host).update(
        last_seen_up=timezone.now() - timedelta(seconds=seconds))


def _failure(host: str = "compute-1") -> HostFailure:
    return HostFailure.objects.get(host=host)


def _scheduler_runs(sent) -> None:
    """Run the evacuations the watch asked the scheduler for, as its worker would."""
    for message in [s for s in sent if s.name == rpc.TASK_EVACUATE]:
        scheduler_tasks.evacuate(*message.args)
        sent.remove(message)


def test_a_host_that_reports_is_left_alone(hosts, sent):
    assert host_watch.watch() == {}
    assert not HostFailure.objects.exists()


def test_a_silent_host_is_fenced_then_only_its_ha_servers_are_evacuated(member, hosts, sent,
                                                                         fake_fencing):
    ha = _server(member, hosts, "ha", ha=True)
    plain = _server(member, hosts, "plain", ha=False)
    _silence("compute-1", seconds=10)
    assert host_watch.watch() == {}  # a late heartbeat is not a failure
    _silence("compute-1")
    assert host_watch.watch() == {"compute-1": hf.RECOVERING}
    assert fake_fencing.calls == ["compute-1"]
    failure = _failure()
    assert failure.fenced_at is not None and failure.forced_down_by_watch
    assert Service.objects.get(host="compute-1").forced_down  # host_status DOWN from now on
    assert {g["name"]: g["state"] for g in failure.guests} == {"ha": hf.EVACUATING,
                                                               "plain": hf.LEFT}
    assert [s.args[0] for s in sent if s.name == rpc.TASK_EVACUATE] == [str(ha.uuid)]

    _scheduler_runs(sent)
    ha.refresh_from_db()
    assert ha.task_state == states.REBUILD_SPAWNING and ha.host in ("compute-2", "compute-3")
    apply_instance_event(msg.InstanceEvent(request_id="r", instance_uuid=str(ha.uuid),
                                           host=ha.host, event=msg.EVENT_REBUILT,
                                           power_state=msg.POWER_RUNNING))
    assert host_watch.watch() == {"compute-1": hf.RECOVERED}
    assert {g["name"]: g["state"] for g in _failure().guests} == {"ha": hf.DONE,
                                                                  "plain": hf.LEFT}
    plain.refresh_from_db()
    assert (plain.host, plain.vm_state) == ("compute-1", "active")  # untouched
    assert fake_fencing.calls == ["compute-1"]  # fenced once, however many passes


def test_an_aggregate_with_ha_true_marks_all_its_servers(member, hosts, sent):
    aggregate = Aggregate.objects.create(name="ha-hosts", metadata={"ha": "true"})
    AggregateHost.objects.create(aggregate=aggregate, host="compute-1")
    _server(member, hosts, "in-aggregate", ha=False)
    _silence("compute-1")
    host_watch.watch()
    assert [g["state"] for g in _failure().guests] == [hf.EVACUATING]


def test_nothing_is_fenced_while_most_hosts_are_silent(member, hosts, sent, fake_fencing):
    _server(member, hosts, "ha", ha=True)
    _silence("compute-1")
    _silence("compute-2")
    assert host_watch.watch() == {"compute-1": hf.SUSPECTED, "compute-2": hf.SUSPECTED}
    assert fake_fencing.calls == [] and not sent
    assert "2 of 3 hosts are silent" in _failure().message
    host_up("compute-2")  # the others come back: the one still silent is fenced
    assert host_watch.watch() == {"compute-1": hf.RECOVERING}
    assert HostFailure.objects.get(host="compute-2").status == hf.CLEARED


def test_a_failing_fence_is_retried_then_waits_for_a_person_and_nothing_moves(
        member, hosts, sent, fake_fencing, settings):
    fake_fencing.outcomes = [fencing.FAILED]
    _server(member, hosts, "ha", ha=True)
    _silence("compute-1")
    assert host_watch.watch() == {"compute-1": hf.FENCE_FAILED}
    assert host_watch.watch() == {"compute-1": hf.FENCE_FAILED}  # not before the interval
    assert len(fake_fencing.calls) == 1
    for _ in range(2):
        HostFailure.objects.update(updated_at=timezone.now() - timedelta(seconds=20))
        host_watch.watch()
    assert len(fake_fencing.calls) == 3
    assert _failure().status == hf.AWAITING_CONFIRMATION
    assert "Fencing failed 3 times" in _failure().message
    assert not sent and not Service.objects.get(host="compute-1").forced_down
    hf.confirm_down("compute-1")  # the operator's word
    assert host_watch.watch() == {"compute-1": hf.RECOVERING}
    assert not _failure().forced_down_by_watch  # it was the operator's: a return keeps it


def test_a_fence_command_that_hangs_is_a_failed_fence(settings):
    fencer = fencing.CommandFencer("sleep 5", timeout=0.3)
    result = fencer.fence("compute-1")
    assert result.outcome == fencing.FAILED and "did not finish" in result.message
    assert fencing.CommandFencer("false").fence("h").outcome == fencing.FAILED
    assert fencing.CommandFencer("true", verify="false").fence("h").outcome == fencing.FAILED
    ok = fencing.CommandFencer("test {host} = compute-{n}", values={"n": "1"})
    assert ok.fence("compute-1").outcome == fencing.CONFIRMED


def test_a_driver_that_raises_fails_the_fence_instead_of_sticking(member, hosts, sent,
                                                                  monkeypatch):
    def broken(host: str) -> fencing.FenceResult:
        raise RuntimeError("BMC library bug")

    monkeypatch.setattr(fencing.FAKE, "fence", broken)
    _silence("compute-1")
    assert host_watch.watch() == {"compute-1": hf.FENCE_FAILED}
    assert "(RuntimeError)" in _failure().message
    assert "BMC library bug" not in _failure().message  # a driver error may quote secrets


def test_with_the_manual_driver_nothing_moves_until_an_operator_confirms(member, hosts, sent,
                                                                         settings, api_as, admin):
    settings.KUMO_FENCING_HOSTS = {"compute-1": {"driver": "manual"}}
    _server(member, hosts, "ha", ha=True)
    _silence("compute-1")
    for _ in range(3):
        assert host_watch.watch() == {"compute-1": hf.AWAITING_CONFIRMATION}
    assert "openstack compute service set --down compute-1" in _failure().message
    assert not sent
    # The operator's confirmation is Nova's forced_down, through the API.
    service = Service.objects.get(host="compute-1")
    answer = api_as(admin).put(f"/compute/v2.1/os-services/{service.uuid}",
                               {"forced_down": True}, version="2.53")
    assert answer.status_code == 200, answer.content
    assert host_watch.watch() == {"compute-1": hf.RECOVERING}
    assert [s.name for s in sent] == [rpc.TASK_EVACUATE]


def test_a_host_that_reports_again_before_it_is_fenced_loses_nothing(member, hosts, sent,
                                                                     settings):
    settings.KUMO_FENCING_DRIVER = "manual"
    server = _server(member, hosts, "ha", ha=True)
    _silence("compute-1")
    host_watch.watch()
    host_up("compute-1")
    assert host_watch.watch() == {}
    assert (_failure().status, _failure().closed_at is not None) == (hf.CLEARED, True)
    server.refresh_from_db()
    assert server.host == "compute-1" and not sent


def test_a_fenced_host_that_returns_rejoins(member, hosts, sent):
    _server(member, hosts, "ha", ha=True)
    _silence("compute-1")
    host_watch.watch()
    _scheduler_runs(sent)
    host_up("compute-1")
    # One report after the fence may have waited in the queue: not yet back.
    assert host_watch.watch() == {"compute-1": hf.RECOVERING}
    assert Service.objects.get(host="compute-1").forced_down
    Service.objects.filter(host="compute-1").update(
        last_seen_up=timezone.now() + timedelta(seconds=1))
    assert host_watch.watch() == {}
    failure = _failure()
    assert failure.status == hf.REJOINED and failure.closed_at is not None
    assert not Service.objects.get(host="compute-1").forced_down  # set by the watch: lifted
    # A new silence is a new failure; the old one stays as history.
    _silence("compute-1")
    host_watch.watch()
    assert HostFailure.objects.filter(host="compute-1").count() == 2


def test_a_disabled_host_is_in_maintenance_and_not_fenced(member, hosts, sent, fake_fencing):
    Service.objects.filter(host="compute-1").update(disabled=True)
    _silence("compute-1")
    assert host_watch.watch() == {}
    assert fake_fencing.calls == []


def test_the_api_shows_failures_to_admins_only(member, hosts, sent, api_as, admin):
    _server(member, hosts, "ha", ha=True)
    _silence("compute-1")
    host_watch.watch()
    api = api_as(admin)
    (listed,) = api.get("/compute/v2.1/os-host-failures").json()["host_failures"]
    assert (listed["host"], listed["status"], listed["closed_at"]) == ("compute-1",
                                                                       hf.RECOVERING, None)
    shown = api.get(f"/compute/v2.1/os-host-failures/{listed['id']}").json()["host_failure"]
    assert [(g["name"], g["ha"], g["state"]) for g in shown["guests"]] == [
        ("ha", True, hf.EVACUATING)]
    assert api.get("/compute/v2.1/os-host-failures?host=compute-2").json() == {
        "host_failures": []}
    assert api.get("/compute/v2.1/os-host-failures/nope").status_code == 404
    assert api_as(member).get("/compute/v2.1/os-host-failures").status_code == 403


def test_a_flag_from_before_the_failure_confirms_nothing(member, hosts, sent, fake_fencing):
    """Forced down for maintenance before it went silent: the driver still fences it."""
    _server(member, hosts, "ha", ha=True)
    Service.objects.filter(host="compute-1").update(forced_down=True)
    fake_fencing.outcomes = [fencing.FAILED]
    _silence("compute-1")
    assert host_watch.watch() == {"compute-1": hf.FENCE_FAILED}
    assert fake_fencing.calls == ["compute-1"] and not sent


def test_a_server_busy_when_its_host_died_is_evacuated_once_its_task_ends(member, hosts, sent):
    server = _server(member, hosts, "ha", ha=True)
    Instance.objects.filter(pk=server.pk).update(task_state=states.REBOOTING)
    _silence("compute-1")
    host_watch.watch()
    _scheduler_runs(sent)  # refused without a fault: it is busy
    assert [g["state"] for g in _failure().guests] == [hf.EVACUATING]
    Instance.objects.filter(pk=server.pk).update(task_state=None)
    guests = _failure().guests
    guests[0]["since"] = (timezone.now() - timedelta(minutes=1)).isoformat()
    HostFailure.objects.update(guests=guests)
    host_watch.watch()  # asked again
    _scheduler_runs(sent)
    server.refresh_from_db()
    assert server.task_state == states.REBUILD_SPAWNING and server.host != "compute-1"


def test_one_host_s_broken_setting_does_not_stop_the_others(member, hosts, sent, settings):
    settings.KUMO_FENCING_HOSTS = {"compute-1": {"driver": "command"}}  # no command configured
    settings.KUMO_FENCE_COMMAND = "{no_such_value}"
    _silence("compute-1")
    assert host_watch.watch() == {"compute-1": hf.FENCE_FAILED}
