"""The evacuate action (admins): its body by microversion (2.14, 2.29, 2.68), Nova's checks in
Nova's order, and the evacuation itself followed with the events the hosts would report: the
server rebuilt on another host with its claim moved there, a stopped one stopped again, a failed
rebuild retried on a third host and then given up with a fault."""

from __future__ import annotations

import pytest

from cloud import rpc
from cloud.compute import states
from cloud.compute.models import Allocation, ComputeNode, Instance, InstanceFault, Migration
from cloud.conductor import reconciler
from cloud.conductor.instance_events import apply_instance_event
from cloud.scheduler import tasks as scheduler_tasks
from compute_agent import messages as msg
from tests.factories import host_up, make_server, migratable_hosts

pytestmark = pytest.mark.usefixtures("mv2104")
V = "/compute/v2.1"


@pytest.fixture
def hosts(db):
    """compute-1 (silent for an hour), compute-2 and compute-3 (up)."""
    nodes = migratable_hosts(3)
    host_up("compute-1", up=False)
    return nodes


@pytest.fixture
def server(member, hosts):
    """An ACTIVE server of the dead compute-1, holding its claim there."""
    instance = make_server(member, host="compute-1", node="compute-1", memory_mb=512)
    host_up("compute-1", up=False)
    Allocation.objects.create(instance=instance, node=hosts[1], vcpus=1, memory_mb=512, disk_gb=1)
    ComputeNode.objects.filter(pk=hosts[1].pk).update(vcpus_used=1, memory_mb_used=512,
                                                      local_gb_used=1)
    return instance


def _evacuate(api, server, version, **body):
    return api.post(f"{V}/servers/{server.uuid}/action", {"evacuate": body}, version=version)


def _report(server, event, host, **fields):
    apply_instance_event(msg.InstanceEvent(
        request_id="req-e", instance_uuid=str(server.uuid), host=host, event=event, **fields))
    server.refresh_from_db()


def _used() -> dict[str, int]:
    return {n.host: n.memory_mb_used for n in ComputeNode.objects.order_by("host")}


@pytest.mark.parametrize("version, body, status", [
    ("2.13", {}, 400),                                      # onSharedStorage required
    ("2.13", {"onSharedStorage": False}, 200),
    ("2.14", {"onSharedStorage": False}, 400),              # gone at 2.14
    ("2.14", {}, 200),
    ("2.28", {"host": "compute-2", "force": True}, 400),    # force from 2.29
    ("2.29", {"host": "compute-2", "force": True}, 200),
    ("2.29", {"force": True}, 400),                         # forced to no host
    ("2.68", {"host": "compute-2", "force": False}, 400),   # force gone at 2.68
    ("2.95", {"host": "compute-2"}, 200),
])
def test_the_evacuate_body_follows_the_microversion(admin, api_as, server, version, body,
                                                    status, sent):
    answer = _evacuate(api_as(admin), server, version, **body)
    assert answer.status_code == status, answer.content
    server.refresh_from_db()
    assert server.host == ("compute-1" if status == 400 else "compute-2")


def test_nova_s_checks_come_first_and_a_refusal_leaves_nothing(admin, api_as, server, sent):
    api = api_as(admin)
    assert _evacuate(api, server, "2.95", host="nowhere").status_code == 404
    assert _evacuate(api, server, "2.95", host="compute-1").status_code == 400
    host_up("compute-1")
    in_use = _evacuate(api, server, "2.95")
    assert in_use.status_code == 400
    assert in_use.json()["badRequest"]["message"] == "Compute service of compute-1 is still in use."
    host_up("compute-1", up=False)
    Instance.objects.filter(pk=server.pk).update(vm_state="paused")
    assert _evacuate(api, server, "2.95").status_code == 409
    assert not Migration.objects.exists() and not sent
    assert Instance.objects.get(pk=server.pk).host == "compute-1"


def test_members_may_not_evacuate(member, api_as, server):
    assert _evacuate(api_as(member), server, "2.95").status_code == 403


def test_an_evacuated_server_is_rebuilt_on_another_host_and_its_claim_follows(
        admin, api_as, server, sent):
    api = api_as(admin)
    assert _evacuate(api, server, "2.94", host="compute-2").status_code == 200
    server.refresh_from_db()
    migration = Migration.objects.get()
    assert (migration.migration_type, migration.status, migration.source_compute,
            migration.dest_compute) == ("evacuation", "accepted", "compute-1", "compute-2")
    assert (server.host, server.task_state) == ("compute-2", states.REBUILD_SPAWNING)
    shown = api.get(f"{V}/servers/{server.uuid}").json()["server"]
    assert (shown["status"], shown["OS-EXT-SRV-ATTR:host"]) == ("REBUILD", "compute-2")
    # Room held on both hosts until the rebuild is done; the dead host's by the migration.
    assert _used() == {"compute-1": 512, "compute-2": 512, "compute-3": 0}
    ((rebuild,),) = [(s,) for s in sent]
    assert (rebuild.name, rebuild.queue) == (msg.TASK_REBUILD, "compute.compute-2")
    assert rebuild.payload["instance_uuid"] == str(server.uuid)

    _report(server, msg.EVENT_REBUILT, "compute-2", power_state=msg.POWER_RUNNING)
    migration.refresh_from_db()
    assert (server.vm_state, server.task_state, server.host) == ("active", None, "compute-2")
    assert migration.status == "done"
    assert _used() == {"compute-1": 0, "compute-2": 512, "compute-3": 0}
    assert Allocation.objects.get().node.host == "compute-2"
    actions = api.get(f"{V}/servers/{server.uuid}/os-instance-actions").json()
    assert actions["instanceActions"][0]["action"] == "evacuate"


def test_a_stopped_server_is_evacuated_stopped(admin, api_as, server, sent):
    Instance.objects.filter(pk=server.pk).update(vm_state=states.STOPPED, power_state="shutdown")
    assert _evacuate(api_as(admin), server, "2.95").status_code == 200
    server.refresh_from_db()
    _report(server, msg.EVENT_REBUILT, server.host, power_state=msg.POWER_RUNNING)
    assert server.task_state == states.POWERING_OFF
    assert sent[-1].name == msg.TASK_STOP and sent[-1].queue == f"compute.{server.host}"
    _report(server, msg.EVENT_STOPPED, server.host, power_state=msg.POWER_SHUTDOWN)
    assert (server.vm_state, server.task_state) == ("stopped", None)


def test_from_2_95_an_evacuated_server_is_left_stopped(admin, api_as, server, sent):
    assert _evacuate(api_as(admin), server, "2.95").status_code == 200
    server.refresh_from_db()
    _report(server, msg.EVENT_REBUILT, server.host, power_state=msg.POWER_RUNNING)
    assert server.task_state == states.POWERING_OFF
    assert sent[-1].name == msg.TASK_STOP
    _report(server, msg.EVENT_STOPPED, server.host, power_state=msg.POWER_SHUTDOWN)
    assert (server.vm_state, server.task_state) == ("stopped", None)


def test_a_failed_rebuild_is_tried_on_another_host_then_given_up(admin, api_as, server, sent,
                                                                  settings):
    settings.KUMO_MAX_BUILD_RETRIES = 1
    assert _evacuate(api_as(admin), server, "2.95", host="compute-2").status_code == 200
    server.refresh_from_db()
    _report(server, msg.EVENT_ACTION_FAILED, "compute-2", action="evacuate",
            message="no space left")
    # Back on its dead host, the room on compute-2 given back, another try asked for.
    assert (server.host, server.task_state, server.vm_state) == ("compute-1", None, "active")
    assert _used() == {"compute-1": 512, "compute-2": 0, "compute-3": 0}
    assert sent[-1].name == rpc.TASK_EVACUATE
    scheduler_tasks.evacuate(*sent[-1].args)
    server.refresh_from_db()
    assert (server.host, server.task_state) == ("compute-3", states.REBUILD_SPAWNING)
    _report(server, msg.EVENT_ACTION_FAILED, "compute-3", action="evacuate", message="broken")
    # One retry allowed and used: no third try, the server is ERROR with the reason.
    assert (server.host, server.task_state, server.vm_state) == ("compute-1", None, "error")
    assert sent[-1].name != rpc.TASK_EVACUATE
    assert "broken" in InstanceFault.objects.filter(instance=server).latest("id").message
    assert list(Migration.objects.order_by("id").values_list("dest_compute", "status")) == [
        ("compute-2", "failed"), ("compute-3", "failed")]
    assert _used() == {"compute-1": 512, "compute-2": 0, "compute-3": 0}


def test_an_evacuation_whose_new_host_never_answers_stays_there_in_error_and_is_not_retried(
        admin, api_as, server, sent, settings):
    """The new host may still be rebuilding it: another copy elsewhere could run it twice."""
    settings.KUMO_TASK_DEADLINES = {**settings.KUMO_TASK_DEADLINES, "default": 0,
                                    states.REBUILD_SPAWNING: 0}
    assert _evacuate(api_as(admin), server, "2.95", host="compute-2").status_code == 200
    Instance.objects.filter(pk=server.pk).update(updated_at="2000-01-01T00:00:00Z")
    reconciler.reconcile()
    server.refresh_from_db()
    assert (server.host, server.task_state, server.vm_state) == ("compute-2", None, "error")
    assert rpc.TASK_EVACUATE not in [s.name for s in sent]
    assert _used() == {"compute-1": 0, "compute-2": 512, "compute-3": 0}
    assert Migration.objects.get().status == "failed"


def test_no_room_anywhere_is_a_400_that_leaves_nothing(admin, api_as, server, hosts, sent):
    ComputeNode.objects.exclude(host="compute-1").update(memory_mb_used=4096)
    answer = _evacuate(api_as(admin), server, "2.95")
    assert answer.status_code == 400
    assert "No valid host" in answer.json()["badRequest"]["message"]
    server.refresh_from_db()
    assert (server.host, server.task_state) == ("compute-1", None)
    assert not Migration.objects.exists() and not sent
