"""Moves between hosts through the API, followed step by step with the events the hosts would
report (the agent's side: tests/unit/compute_agent, tests/e2e/test_migration_agent.py): what is
refused before anything moves, the claims on both hosts while a move is under way, and what a
finished, failed, aborted, confirmed or reverted move leaves."""

from __future__ import annotations

import pytest

from cloud.compute import states
from cloud.compute.models import Allocation, ComputeNode, Flavor, Instance, Migration
from cloud.conductor.instance_events import apply_instance_event
from compute_agent import messages as msg
from tests.factories import V, host_up, make_server, migratable_hosts

pytestmark = pytest.mark.django_db


@pytest.fixture
def hosts(db):
    """Two hosts that take migrations, compute-1 and compute-2, both up."""
    return migratable_hosts(2)


@pytest.fixture
def server(member, hosts):
    """An ACTIVE server on compute-1 holding its claim there."""
    instance = make_server(member, "vm1", host="compute-1", node="compute-1", vcpus=1,
                           memory_mb=512, root_gb=1, flavor_snapshot={
                               "id": "1", "name": "m1.tiny", "vcpus": 1, "ram": 512, "disk": 1,
                               "ephemeral": 0, "swap": 0, "extra_specs": {}})
    Allocation.objects.create(instance=instance, node=hosts[1], vcpus=1, memory_mb=512, disk_gb=1)
    ComputeNode.objects.filter(pk=hosts[1].pk).update(vcpus_used=1, memory_mb_used=512,
                                                      local_gb_used=1)
    return instance


def act(api, server, body, version="2.60"):
    return api.post(f"{V}/servers/{server.uuid}/action", body, version=version)


def report(server, event, host, migration, **fields):
    apply_instance_event(msg.InstanceEvent(
        request_id="req-m", instance_uuid=str(server.uuid), host=host, event=event,
        migration_id=str(migration.pk), **fields))
    server.refresh_from_db()
    migration.refresh_from_db()


def used(hosts) -> dict[str, int]:
    return {n.host: n.memory_mb_used for n in ComputeNode.objects.order_by("host")}


def claims() -> dict[str, tuple[str, str]]:
    return {a.node.host: ("instance" if a.instance_id else "migration", a.memory_mb)
            for a in Allocation.objects.select_related("node")}


# --- live migration


def test_a_live_migration_holds_both_hosts_then_ends_on_the_destination(admin, api_as, server,
                                                                          hosts, sent):
    api = api_as(admin)
    assert act(api, server, {"os-migrateLive": {"host": None, "block_migration": "auto"}}
               ).status_code == 202
    migration = Migration.objects.get()
    server.refresh_from_db()
    assert (migration.migration_type, migration.status, migration.dest_compute) == (
        "live-migration", "preparing", "compute-2")
    assert server.task_state == states.MIGRATING
    assert api.get(f"{V}/servers/{server.uuid}").json()["server"]["status"] == "MIGRATING"
    assert used(hosts) == {"compute-1": 512, "compute-2": 512}  # room on both while it moves
    assert claims() == {"compute-1": ("migration", 512), "compute-2": ("instance", 512)}
    ((prepare,),) = [(s,) for s in sent]
    assert (prepare.name, prepare.queue) == (msg.TASK_PREPARE_MIGRATION, "compute.compute-2")
    assert prepare.payload["spawn"]["instance_uuid"] == str(server.uuid)

    report(server, msg.EVENT_MIGRATION_PREPARED, "compute-2", migration)
    assert migration.status == "running"
    assert (sent[-1].name, sent[-1].queue, sent[-1].payload["dest_uri"]) == (
        msg.TASK_LIVE_MIGRATE, "compute.compute-1", "qemu+tcp://10.77.0.12/system")

    report(server, msg.EVENT_MIGRATION_PROGRESS, "compute-1", migration,
           progress={"memory_total": 1000, "memory_processed": 250, "memory_remaining": 750})
    shown = api.get(f"{V}/servers/{server.uuid}/migrations", version="2.23").json()
    assert [(m["id"], m["memory_processed_bytes"]) for m in shown["migrations"]] == [
        (migration.pk, 250)]
    assert server.progress == 25

    report(server, msg.EVENT_LIVE_MIGRATED, "compute-1", migration, power_state="running")
    assert (server.host, server.task_state, server.vm_state) == ("compute-2", None, "active")
    assert migration.status == "completed"
    assert used(hosts) == {"compute-1": 0, "compute-2": 512}
    assert claims() == {"compute-2": ("instance", 512)}
    listed = api.get(f"{V}/os-migrations", version="2.23").json()["migrations"]
    assert [(m["migration_type"], m["status"]) for m in listed] == [("live-migration", "completed")]


@pytest.mark.parametrize("body, why", [
    ({"host": "compute-9", "block_migration": "auto"}, "could not be found"),
    ({"host": "compute-1", "block_migration": "auto"}, "can't be the same"),
    ({"host": None, "block_migration": "sometimes"}, "block_migration"),
])
def test_a_live_migration_that_cannot_happen_is_400_and_nothing_moves(admin, api_as, server,
                                                                        hosts, sent, body, why):
    response = act(api_as(admin), server, {"os-migrateLive": body})
    assert response.status_code == 400 and why in response.text, response.text
    server.refresh_from_db()
    assert server.task_state is None and not Migration.objects.exists() and sent == []
    assert claims() == {"compute-1": ("instance", 512)}


def test_no_destination_that_fits_or_takes_migrations_is_400_saying_why(admin, api_as, server,
                                                                          hosts, sent):
    ComputeNode.objects.filter(host="compute-2").update(cpu_info={"arch": "aarch64"})
    response = act(api_as(admin), server, {"os-migrateLive": {"host": None,
                                                              "block_migration": "auto"}})
    assert response.status_code == 400 and "CPU architecture aarch64" in response.text
    host_up("compute-2", up=False)
    response = act(api_as(admin), server, {"os-migrateLive": {"host": "compute-2",
                                                              "block_migration": "auto"}})
    assert response.status_code == 400 and "unavailable" in response.text
    assert not Migration.objects.exists() and sent == []


def test_only_admins_migrate_and_only_a_running_server(admin, member, api_as, server, hosts, sent):
    body = {"os-migrateLive": {"host": None, "block_migration": "auto"}}
    assert act(api_as(member), server, body).status_code == 403
    Instance.objects.filter(pk=server.pk).update(vm_state=states.STOPPED)
    assert act(api_as(admin), server, body).status_code == 409
    assert sent == []


def test_a_failed_live_migration_leaves_the_guest_on_its_source_and_the_target_clean(
        admin, api_as, server, hosts, sent):
    act(api_as(admin), server, {"os-migrateLive": {"host": None, "block_migration": "auto"}})
    migration = Migration.objects.get()
    report(server, msg.EVENT_MIGRATION_PREPARED, "compute-2", migration)
    report(server, msg.EVENT_ACTION_FAILED, "compute-1", migration, action=msg.ACTION_MIGRATION,
           message="target libvirtd went away", power_state="running")
    assert migration.status == "failed" and "went away" in migration.fault
    assert (server.host, server.task_state, server.vm_state) == ("compute-1", None, "active")
    assert used(hosts) == {"compute-1": 512, "compute-2": 0}
    assert claims() == {"compute-1": ("instance", 512)}
    assert (sent[-1].name, sent[-1].queue) == (msg.TASK_DESTROY, "compute.compute-2")


def test_aborting_a_live_migration_before_and_while_it_runs(admin, api_as, server, hosts, sent):
    api = api_as(admin)
    act(api, server, {"os-migrateLive": {"host": None, "block_migration": "auto"}})
    first = Migration.objects.get()
    # A queued migration can be aborted from 2.65 only (before, only a running one: 400).
    too_early = api.delete(f"{V}/servers/{server.uuid}/migrations/{first.pk}", version="2.64")
    assert too_early.status_code == 400
    assert "Cannot abort live migration" in too_early.json()["badRequest"]["message"]
    assert api.delete(f"{V}/servers/{server.uuid}/migrations/{first.pk}",
                      version="2.65").status_code == 202
    first.refresh_from_db()
    server.refresh_from_db()
    assert first.status == "cancelled" and server.task_state is None
    assert claims() == {"compute-1": ("instance", 512)}

    act(api, server, {"os-migrateLive": {"host": None, "block_migration": "auto"}})
    second = Migration.objects.exclude(pk=first.pk).get()
    report(server, msg.EVENT_MIGRATION_PREPARED, "compute-2", second)
    assert api.delete(f"{V}/servers/{server.uuid}/migrations/{second.pk}",
                      version="2.24").status_code == 202
    assert (sent[-1].name, sent[-1].queue) == (msg.TASK_ABORT_MIGRATION, "compute.compute-1")
    assert api.post(f"{V}/servers/{server.uuid}/migrations/{second.pk}/action",
                    {"force_complete": None}, version="2.22").status_code == 202
    assert sent[-1].name == msg.TASK_FORCE_COMPLETE_MIGRATION
    report(server, msg.EVENT_ACTION_FAILED, "compute-1", second, action=msg.ACTION_MIGRATION,
           message="migration job: operation aborted: cancelled by client", power_state="running")
    assert second.status == "cancelled" and server.host == "compute-1"


# --- cold migration, resize elsewhere


def test_2_56_a_cold_migration_takes_a_host_which_is_ignored_before(admin, api_as, server, hosts):
    api = api_as(admin)
    assert act(api, server, {"migrate": {"host": "nowhere"}}, version="2.56").status_code in (
        400, 404)
    assert not Migration.objects.exists()
    assert act(api, server, {"migrate": {"host": "nowhere"}}, version="2.55").status_code == 202
    assert Migration.objects.get().dest_compute in (None, "", "compute-2")


def test_a_cold_migration_confirmed_ends_on_the_destination(admin, api_as, server, hosts, sent):
    api = api_as(admin)
    assert act(api, server, {"migrate": {"host": "compute-2"}}, version="2.56").status_code == 202
    migration = Migration.objects.get()
    assert (migration.migration_type, migration.status) == ("migration", "pre-migrating")
    report(server, msg.EVENT_MIGRATION_PREPARED, "compute-2", migration)
    assert migration.status == "migrating" and server.task_state == states.RESIZE_MIGRATING
    assert (sent[-1].name, sent[-1].queue) == (msg.TASK_MIGRATE_DISK, "compute.compute-1")
    report(server, msg.EVENT_DISK_MIGRATED, "compute-1", migration)
    assert server.host == "compute-2" and migration.status == "post-migrating"
    assert (sent[-1].name, sent[-1].queue) == (msg.TASK_FINISH_MIGRATION, "compute.compute-2")
    report(server, msg.EVENT_MIGRATION_FINISHED, "compute-2", migration, power_state="running")
    assert api.get(f"{V}/servers/{server.uuid}").json()["server"]["status"] == "VERIFY_RESIZE"
    assert used(hosts) == {"compute-1": 512, "compute-2": 512}

    assert act(api, server, {"confirmResize": None}).status_code == 204
    migration.refresh_from_db()
    server.refresh_from_db()
    assert migration.status == "confirmed" and server.vm_state == "active"
    assert used(hosts) == {"compute-1": 0, "compute-2": 512}
    assert (sent[-1].name, sent[-1].queue) == (msg.TASK_DESTROY, "compute.compute-1")


def test_a_cold_migration_reverted_returns_to_its_source_and_starts_there(admin, api_as, server,
                                                                          hosts, sent):
    api = api_as(admin)
    act(api, server, {"migrate": None})
    migration = Migration.objects.get()
    for event, host in ((msg.EVENT_MIGRATION_PREPARED, "compute-2"),
                        (msg.EVENT_DISK_MIGRATED, "compute-1"),
                        (msg.EVENT_MIGRATION_FINISHED, "compute-2")):
        report(server, event, host, migration, power_state="running")
    assert act(api, server, {"revertResize": None}).status_code == 202
    migration.refresh_from_db()
    assert migration.status == "reverting"
    assert [(s.name, s.queue) for s in sent[-2:]] == [
        (msg.TASK_DESTROY, "compute.compute-2"), (msg.TASK_REVERT_MIGRATION, "compute.compute-1")]
    report(server, msg.EVENT_MIGRATION_REVERTED, "compute-1", migration, power_state="running")
    assert migration.status == "reverted"
    assert (server.host, server.vm_state, server.task_state) == ("compute-1", "active", None)
    assert used(hosts) == {"compute-1": 512, "compute-2": 0}


def test_a_resize_without_room_at_home_moves_with_its_new_flavor_and_a_revert_restores_it(
        member, api_as, server, hosts, sent):
    Flavor.objects.create(flavorid="1", name="m1.tiny", vcpus=1, memory_mb=512, root_gb=1)
    Flavor.objects.create(flavorid="big", name="m1.big", vcpus=2, memory_mb=3800, root_gb=2)
    ComputeNode.objects.filter(host="compute-1").update(memory_mb_used=3000)  # other guests too
    api = api_as(member)
    assert act(api, server, {"resize": {"flavorRef": "big"}}).status_code == 202
    migration = Migration.objects.get()
    server.refresh_from_db()
    assert (migration.migration_type, migration.dest_compute) == ("resize", "compute-2")
    assert (server.memory_mb, server.task_state) == (3800, states.RESIZE_PREP)
    assert used(hosts) == {"compute-1": 3000, "compute-2": 3800}
    for event, host in ((msg.EVENT_MIGRATION_PREPARED, "compute-2"),
                        (msg.EVENT_DISK_MIGRATED, "compute-1"),
                        (msg.EVENT_MIGRATION_FINISHED, "compute-2")):
        report(server, event, host, migration, power_state="running")
    assert act(api, server, {"revertResize": None}).status_code == 202
    report(server, msg.EVENT_MIGRATION_REVERTED, "compute-1", migration, power_state="running")
    assert (server.memory_mb, server.flavor_snapshot["id"], server.host) == (512, "1", "compute-1")
    assert used(hosts) == {"compute-1": 3000, "compute-2": 0}


def test_a_repeated_or_stale_report_changes_nothing(admin, api_as, server, hosts, sent):
    act(api_as(admin), server, {"os-migrateLive": {"host": None, "block_migration": "auto"}})
    migration = Migration.objects.get()
    report(server, msg.EVENT_LIVE_MIGRATED, "compute-1", migration)  # before it even ran
    assert migration.status == "preparing" and server.host == "compute-1"
    report(server, msg.EVENT_MIGRATION_PREPARED, "compute-2", migration)
    report(server, msg.EVENT_MIGRATION_PREPARED, "compute-2", migration)
    assert [s.name for s in sent].count(msg.TASK_LIVE_MIGRATE) == 1


# --- the reconciler


@pytest.mark.parametrize("runs_on, status, host", [
    ("compute-2", "completed", "compute-2"),
    ("compute-1", "error", "compute-1"),
])
def test_a_stuck_live_migration_is_finished_or_undone_from_where_the_guest_runs(
        admin, api_as, server, hosts, sent, settings, runs_on, status, host):
    from datetime import timedelta

    from django.utils import timezone

    from cloud.conductor.reconciler import reconcile

    settings.KUMO_TASK_DEADLINES = {"migrating": 60, "default": 60}
    act(api_as(admin), server, {"os-migrateLive": {"host": None, "block_migration": "auto"}})
    migration = Migration.objects.get()
    report(server, msg.EVENT_MIGRATION_PREPARED, "compute-2", migration)
    long_ago = timezone.now() - timedelta(minutes=10)
    Migration.objects.update(updated_at=long_ago)
    Instance.objects.update(updated_at=long_ago)
    ComputeNode.objects.filter(host=runs_on).update(
        domains=[{"uuid": str(server.uuid), "power_state": "running"}])

    reconcile()

    migration.refresh_from_db()
    server.refresh_from_db()
    assert (migration.status, server.host, server.task_state) == (status, host, None)
    assert list(claims()) == [host]


def test_a_volume_follows_its_guest_the_attachment_names_the_new_host(admin, member, api_as,
                                                                       server, hosts, sent):
    from cloud.volumes import attachments
    from cloud.volumes.models import Volume, VolumeAttachment

    volume = Volume.objects.create(project=member.project, size=1, status="available",
                                   connection={"driver_volume_type": "nbd", "host": "10.0.0.9",
                                               "port": 10809, "export": "v"})
    attachment = attachments.reserve(volume.pk, str(server.uuid), mountpoint="/dev/vdb")
    attachments.begin_attach(attachment.pk, host="compute-1", mountpoint="/dev/vdb")
    attachments.complete(attachment.pk)
    api = api_as(admin)
    assert act(api, server, {"os-migrateLive": {"host": None, "block_migration": "auto"}}
               ).status_code == 202
    migration = Migration.objects.get()
    report(server, msg.EVENT_MIGRATION_PREPARED, "compute-2", migration)
    assert VolumeAttachment.objects.get().attached_host == "compute-1"  # not moved yet
    report(server, msg.EVENT_LIVE_MIGRATED, "compute-1", migration, power_state="running")
    assert VolumeAttachment.objects.get().attached_host == "compute-2"
    volume.refresh_from_db()
    assert volume.status == "in-use"
