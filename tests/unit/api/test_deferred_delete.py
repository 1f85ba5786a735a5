"""restore and forceDelete (Nova's os-deferred-delete) on a cloud without soft delete, an admin's
injectNetworkInfo, through POST /servers/{id}/action; and a delete interrupting a task."""

from __future__ import annotations

import uuid

import pytest

from cloud.compute.models import Instance, InstanceAction, Migration
from compute_agent import messages as msg
from tests.factories import V, host_up, make_server


@pytest.fixture
def server(member, db):
    return make_server(member)


def _act(api, server_id, body):
    return api.post(f"{V}/servers/{server_id}/action", body, version="2.60")


def test_restore_of_a_server_that_is_not_soft_deleted_is_409_and_changes_nothing(
    member, api_as, server, sent
):
    response = _act(api_as(member), server.uuid, {"restore": None})
    assert response.status_code == 409
    assert response.json()["conflictingRequest"]["message"] == (
        f"Cannot 'restore' instance {server.uuid} while it is in vm_state active")
    server.refresh_from_db()
    assert (server.vm_state, server.task_state, sent) == ("active", None, [])
    assert not InstanceAction.objects.filter(instance=server).exists()


@pytest.mark.parametrize("action", ["restore", "forceDelete"])
def test_restore_or_force_delete_of_an_unknown_server_is_404(member, api_as, action, db):
    assert _act(api_as(member), uuid.uuid4(), {action: None}).status_code == 404


def test_force_delete_deletes_the_server_even_during_a_task(member, api_as, server, sent):
    Instance.objects.filter(pk=server.pk).update(task_state="image_backup")
    assert _act(api_as(member), server.uuid, {"forceDelete": None}).status_code == 202
    server.refresh_from_db()
    assert server.task_state == "deleting"
    assert [s.name for s in sent] == [msg.TASK_DESTROY]


def test_force_delete_of_a_locked_server_is_409_for_its_members(member, api_as, server, sent):
    Instance.objects.filter(pk=server.pk).update(locked=True)
    assert _act(api_as(member), server.uuid, {"forceDelete": None}).status_code == 409
    assert sent == []


def test_inject_network_info_is_accepted_for_admins_only_and_changes_nothing(
    admin, member, api_as, server, sent
):
    assert _act(api_as(member), server.uuid, {"injectNetworkInfo": None}).status_code == 403
    assert _act(api_as(admin), server.uuid, {"injectNetworkInfo": None}).status_code == 202
    server.refresh_from_db()
    assert (server.vm_state, server.task_state, sent) == ("active", None, [])


def test_a_server_deleted_while_it_migrates_is_gone_and_its_migration_ends_in_error(
    member, api_as, server, sent
):
    Instance.objects.filter(pk=server.pk).update(task_state="migrating")
    migration = Migration.objects.create(
        instance=server, migration_type="live-migration", status="running",
        source_compute="compute1", dest_compute="compute2", old_flavor={}, new_flavor={})
    host_up("compute1", False)  # the local delete: completed at once
    assert api_as(member).delete(f"{V}/servers/{server.uuid}").status_code == 204
    server.refresh_from_db()
    migration.refresh_from_db()
    assert (server.deleted, server.task_state, migration.status) == (True, None, "error")
