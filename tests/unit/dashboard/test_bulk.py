"""Bulk actions on the instances table: each selected row goes through the service its own button
calls, and each row's outcome is reported, refusals included."""

from __future__ import annotations

import html

import pytest

from cloud.compute.models import Instance
from tests.factories import make_server

from .conftest import signed_in

pytestmark = pytest.mark.django_db


def _outcomes(page: str) -> dict[str, str]:
    """instance id → its outcome, from the results list."""
    found = {}
    for chunk in page.split('<li data-outcome="')[1:]:
        result, rest = chunk.split('"', 1)
        found[rest.split('data-instance="', 1)[1].split('"', 1)[0]] = result
    return found


def test_the_table_offers_check_boxes_and_bulk_buttons_to_members_only(member, reader):
    vm = make_server(member, "vm1")
    table = signed_in(member).get("/instances/").content.decode()
    assert 'id="bulk-form"' in table
    assert f'name="ids" value="{vm.uuid}" form="bulk-form"' in table
    for name in ("start", "stop", "reboot", "delete"):
        assert f'data-bulk="{name}"' in table, name
    assert 'data-bulk="resize"' not in table and 'data-bulk="rename"' not in table  # need forms
    # Each box says what its row allows now, for the bar to offer.
    assert 'data-actions="stop ' in table
    read_only = signed_in(reader).get("/instances/").content.decode()
    assert "bulk-form" not in read_only and 'name="ids"' not in read_only


def test_bulk_stop_asks_first_then_stops_each_selected_instance(member, sent):
    one, two = make_server(member, "web-a"), make_server(member, "web-b")
    untouched = make_server(member, "web-c")
    client = signed_in(member)
    ids = [str(one.uuid), str(two.uuid)]
    confirm = client.get("/instances/bulk", {"action": "stop", "ids": ids}).content.decode()
    assert "Stop: 2 instances" in confirm and "web-a" in confirm and "web-b" in confirm
    assert Instance.objects.filter(task_state="powering-off").count() == 0  # GET changes nothing
    page = client.post("/instances/bulk", {"action": "stop", "ids": ids}).content.decode()
    assert _outcomes(page) == {str(one.uuid): "done", str(two.uuid): "done"}
    assert "Stopping web-a." in page and "Stopping web-b." in page
    for vm in (one, two, untouched):
        vm.refresh_from_db()
    assert one.task_state == two.task_state == "powering-off"
    assert untouched.task_state is None
    assert sum(m.name.endswith("stop") for m in sent) == 2


def test_a_row_the_service_refuses_is_reported_and_the_others_still_go(member, sent):
    running = make_server(member, "running")
    stopped = make_server(member, "stopped", vm_state="stopped", power_state="shutdown")
    locked = make_server(member, "locked", locked=True)
    client = signed_in(member)
    ids = [str(stopped.uuid), str(running.uuid), str(locked.uuid)]
    confirm = client.get("/instances/bulk", {"action": "stop", "ids": ids}).content.decode()
    assert confirm.count("data-not-now") == 2  # said before, tried anyway
    page = html.unescape(client.post("/instances/bulk", {"action": "stop", "ids": ids}
                                     ).content.decode())
    assert _outcomes(page) == {str(stopped.uuid): "refused", str(running.uuid): "done",
                               str(locked.uuid): "refused"}
    assert "2 of 3 refused" in page
    assert "Cannot 'stop' instance" in page and "is locked" in page
    running.refresh_from_db()
    stopped.refresh_from_db()
    assert running.task_state == "powering-off" and stopped.task_state is None


def test_bulk_delete_deletes_each_one(member, sent):
    doomed = [make_server(member, f"gone-{n}", host=None, vm_state="error") for n in range(2)]
    response = signed_in(member).post("/instances/bulk", {
        "action": "delete", "ids": [str(vm.uuid) for vm in doomed]}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert 'data-bulk-done="delete"' in response.content.decode()
    assert not Instance.objects.filter(deleted=False, display_name__startswith="gone-").exists()


def test_another_projects_instance_in_the_selection_is_not_found_and_untouched(member, other,
                                                                               sent):
    mine, theirs = make_server(member, "mine"), make_server(other, "theirs")
    page = signed_in(member).post("/instances/bulk", {
        "action": "stop", "ids": [str(mine.uuid), str(theirs.uuid)]}).content.decode()
    assert _outcomes(page) == {str(mine.uuid): "done", str(theirs.uuid): "missing"}
    assert "theirs" not in page
    theirs.refresh_from_db()
    assert theirs.task_state is None


def test_a_reader_is_refused_and_nothing_changes(reader, member, sent):
    vm = make_server(member, "vm1")
    client = signed_in(reader)
    assert client.get("/instances/bulk", {"action": "stop", "ids": [str(vm.uuid)]}
                      ).status_code == 403
    assert client.post("/instances/bulk", {"action": "delete", "ids": [str(vm.uuid)]}
                       ).status_code == 403
    vm.refresh_from_db()
    assert vm.task_state is None and not vm.deleted and not sent


def test_what_cannot_be_done_in_bulk_is_refused_in_words(member, sent):
    vm = make_server(member, "vm1")
    client = signed_in(member)
    assert client.post("/instances/bulk", {"action": "resize", "ids": [str(vm.uuid)]}
                       ).status_code == 400
    assert client.post("/instances/bulk", {"action": "explode", "ids": [str(vm.uuid)]}
                       ).status_code == 404
    nothing = client.post("/instances/bulk", {"action": "stop"})
    assert nothing.status_code == 400 and "Select at least one" in nothing.content.decode()
    vm.refresh_from_db()
    assert vm.task_state is None and not sent
