"""Host drains through the API, each step taken as the scheduler task takes it (drains.kick) and
each move followed with the events its hosts would report: the host is disabled at once, running
guests move live and stopped ones cold (confirmed by the drain), one at a time, a guest that cannot
move is reported and skipped, and the drain ends with the host empty of everything that could go.
"""

from __future__ import annotations

import pytest
from django.db.models import F

from cloud.compute import states
from cloud.compute.models import Allocation, ComputeNode, HostDrain, Instance, Migration, Service
from cloud.conductor.instance_events import apply_instance_event
from cloud.conductor.reconciler import reconcile
from cloud.scheduler import drains
from compute_agent import messages as msg
from tests.factories import V, make_server, migratable_hosts

pytestmark = pytest.mark.django_db

LIVE_STEPS = ((msg.EVENT_MIGRATION_PREPARED, "dest"), (msg.EVENT_LIVE_MIGRATED, "source"))
COLD_STEPS = ((msg.EVENT_MIGRATION_PREPARED, "dest"), (msg.EVENT_DISK_MIGRATED, "source"),
              (msg.EVENT_MIGRATION_FINISHED, "dest"))


@pytest.fixture
def hosts(db):
    """Three hosts that take migrations, all up."""
    return migratable_hosts(3)


def guest(owner, hosts, name: str, vm_state: str = states.ACTIVE) -> Instance:
    power = "shutdown" if vm_state == states.STOPPED else "running"
    instance = make_server(owner, name, host="compute-1", node="compute-1", vcpus=1,
                           memory_mb=256, root_gb=1, vm_state=vm_state, power_state=power,
                           flavor_snapshot={"id": "1", "name": "m1.tiny", "vcpus": 1, "ram": 256,
                                            "disk": 1, "ephemeral": 0, "swap": 0,
                                            "extra_specs": {}})
    Allocation.objects.create(instance=instance, node=hosts[1], vcpus=1, memory_mb=256, disk_gb=1)
    ComputeNode.objects.filter(pk=hosts[1].pk).update(
        vcpus_used=F("vcpus_used") + 1, memory_mb_used=F("memory_mb_used") + 256,
        local_gb_used=F("local_gb_used") + 1)
    return instance


def used() -> dict[str, int]:
    return {n.host: n.memory_mb_used for n in ComputeNode.objects.order_by("host")}


def follow(migration: Migration, steps, power: str = msg.POWER_RUNNING) -> None:
    """The hosts report each step of the move."""
    for event, who in steps:
        host = migration.dest_compute if who == "dest" else migration.source_compute
        apply_instance_event(msg.InstanceEvent(
            request_id="req-d", instance_uuid=str(migration.instance_id), host=host, event=event,
            migration_id=str(migration.pk), power_state=power))
        migration.refresh_from_db()


def kicks(sent) -> int:
    return sum(1 for s in sent if s.name == msg.TASK_KICK_DRAIN)


def start(api, host="compute-1", **extra):
    return api.post(f"{V}/os-host-drains", {"host_drain": {"host": host, **extra}})


def test_a_drain_moves_running_guests_live_and_stopped_ones_cold_one_at_a_time(
        admin, member, api_as, hosts, sent):
    first = guest(member, hosts, "a-web")
    stopped = guest(member, hosts, "b-batch", vm_state=states.STOPPED)
    api = api_as(admin)

    started = start(api, reason="kernel update")
    assert started.status_code == 202, started.text
    body = started.json()["host_drain"]
    assert (body["host"], body["status"], body["summary"]) == (
        "compute-1", "running", {"pending": 2, "moving": 0, "done": 0, "failed": 0})
    service = Service.objects.get(host="compute-1", binary="nova-compute")
    assert (service.disabled, service.disabled_reason) == (True, "kernel update")
    assert kicks(sent) == 1  # the first step is asked for once the drain is committed

    drains.kick(body["id"])
    (live,) = Migration.objects.all()
    assert (live.instance_id, live.migration_type) == (first.uuid, "live-migration")
    shown = api.get(f"{V}/os-host-drains/{body['id']}").json()["host_drain"]
    assert [(g["name"], g["state"]) for g in shown["guests"]] == [("a-web", "moving"),
                                                                 ("b-batch", "pending")]

    drains.kick(body["id"])  # a repeated step starts nothing more while one moves
    assert Migration.objects.count() == 1

    follow(live, LIVE_STEPS)
    assert live.status == "completed" and kicks(sent) == 2  # its end asks for the next step
    drains.kick(body["id"])
    cold = Migration.objects.exclude(pk=live.pk).get()
    assert (cold.instance_id, cold.migration_type) == (stopped.uuid, "migration")

    follow(cold, COLD_STEPS, power=msg.POWER_SHUTDOWN)
    assert cold.status == "finished"
    (finish,) = [m for m in sent if m.name == msg.TASK_FINISH_MIGRATION]
    assert finish.payload["power_on"] is False  # it was off: it stays off on its new host
    assert drains.kick(body["id"]) == "completed"  # confirmed by the drain, and it is over
    cold.refresh_from_db()
    assert cold.status == "confirmed"

    done = api.get(f"{V}/os-host-drains/{body['id']}").json()["host_drain"]
    assert done["status"] == "completed" and done["finished_at"]
    assert done["summary"] == {"pending": 0, "moving": 0, "done": 2, "failed": 0}
    assert all(g["progress"] == 100 for g in done["guests"])
    assert not Instance.objects.filter(host="compute-1", deleted=False).exists()
    assert used()["compute-1"] == 0
    stopped.refresh_from_db()
    assert (stopped.vm_state, stopped.task_state) == (states.STOPPED, None)


def test_a_guest_that_cannot_move_is_reported_and_the_drain_goes_on(admin, member, api_as,
                                                                     hosts, sent):
    broken = guest(member, hosts, "a-broken", vm_state=states.ERROR)
    fine = guest(member, hosts, "b-fine")
    drain_id = start(api_as(admin)).json()["host_drain"]["id"]

    drains.kick(drain_id)
    (live,) = Migration.objects.all()
    assert live.instance_id == fine.uuid
    follow(live, LIVE_STEPS)
    assert drains.kick(drain_id) == "failed"
    shown = {g["name"]: g for g in api_as(admin).get(
        f"{V}/os-host-drains/{drain_id}").json()["host_drain"]["guests"]}
    assert shown["b-fine"]["state"] == "done"
    assert shown["a-broken"]["state"] == "failed" and "ERROR" in shown["a-broken"]["message"]
    broken.refresh_from_db()
    assert broken.host == "compute-1"


def test_no_room_anywhere_fails_the_guest_with_the_reason_and_moves_nothing(admin, member,
                                                                           api_as, hosts, sent):
    guest(member, hosts, "stuck")
    Service.objects.filter(host__in=["compute-2", "compute-3"]).update(disabled=True)
    drain_id = start(api_as(admin)).json()["host_drain"]["id"]
    assert drains.kick(drain_id) == "failed"
    (part,) = HostDrain.objects.get().guests
    assert "No valid host" in part["message"]
    assert not Migration.objects.exists()
    assert used() == {"compute-1": 256, "compute-2": 0, "compute-3": 0}


def test_a_failed_move_is_reported_and_the_guest_stays(admin, member, api_as, hosts, sent):
    vm = guest(member, hosts, "vm")
    drain_id = start(api_as(admin)).json()["host_drain"]["id"]
    drains.kick(drain_id)
    migration = Migration.objects.get()
    apply_instance_event(msg.InstanceEvent(
        request_id="req-d", instance_uuid=str(vm.uuid), host=migration.dest_compute,
        event=msg.EVENT_MIGRATION_PREPARED, migration_id=str(migration.pk)))
    apply_instance_event(msg.InstanceEvent(
        request_id="req-d", instance_uuid=str(vm.uuid), host="compute-1",
        event=msg.EVENT_ACTION_FAILED, action=msg.ACTION_MIGRATION,
        migration_id=str(migration.pk), power_state="running", message="target went away"))
    assert drains.kick(drain_id) == "failed"
    (part,) = HostDrain.objects.get().guests
    assert part["state"] == "failed" and "stayed on compute-1" in part["message"]
    vm.refresh_from_db()
    assert (vm.host, vm.vm_state) == ("compute-1", states.ACTIVE)


def test_cancelling_starts_no_further_move_and_lets_the_current_one_finish(admin, member, api_as,
                                                                          hosts, sent):
    guest(member, hosts, "a")
    guest(member, hosts, "b")
    api = api_as(admin)
    drain_id = start(api).json()["host_drain"]["id"]
    drains.kick(drain_id)
    assert api.delete(f"{V}/os-host-drains/{drain_id}").status_code == 202
    assert api.delete(f"{V}/os-host-drains/{drain_id}").status_code == 409
    follow(Migration.objects.get(), LIVE_STEPS)
    assert drains.kick(drain_id) is None
    assert Migration.objects.count() == 1
    shown = api.get(f"{V}/os-host-drains/{drain_id}").json()["host_drain"]
    assert shown["status"] == "cancelled"
    assert [(g["name"], g["state"]) for g in shown["guests"]] == [("a", "moving"),
                                                                 ("b", "failed")]


def test_a_guest_placed_on_the_host_after_the_drain_began_is_drained_too(admin, member, api_as,
                                                                        hosts, sent):
    drain_id = start(api_as(admin)).json()["host_drain"]["id"]
    late = guest(member, hosts, "late")
    drains.kick(drain_id)
    assert Migration.objects.get().instance_id == late.uuid


def test_the_reconciler_carries_on_a_drain_whose_kick_was_lost(admin, member, api_as, hosts,
                                                               sent):
    guest(member, hosts, "vm")
    start(api_as(admin))
    before = kicks(sent)
    reconcile()
    assert kicks(sent) == before + 1


@pytest.mark.parametrize("body, status", [
    ({"host_drain": {"host": "compute-9"}}, 404),
    ({"host_drain": {}}, 400),
    ({"host_drain": {"host": "compute-1", "force": True}}, 400),
    ({"drain": {"host": "compute-1"}}, 400),
])
def test_a_drain_that_cannot_start_changes_nothing(admin, api_as, hosts, sent, body, status):
    response = api_as(admin).post(f"{V}/os-host-drains", body)
    assert response.status_code == status, response.text
    assert not HostDrain.objects.exists() and sent == []
    assert not Service.objects.filter(disabled=True).exists()


def test_one_drain_of_a_host_at_a_time(admin, member, api_as, hosts, sent):
    guest(member, hosts, "vm")
    api = api_as(admin)
    assert start(api).status_code == 202
    second = start(api)
    assert second.status_code == 409 and "already being drained" in second.text
    assert HostDrain.objects.count() == 1
    listed = api.get(f"{V}/os-host-drains?host=compute-1").json()["host_drains"]
    assert [d["status"] for d in listed] == ["running"] and "guests" not in listed[0]
