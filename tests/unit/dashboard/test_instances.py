"""The instances table and one instance's pages, as each persona sees them."""

from __future__ import annotations

import html

import pytest

from cloud.compute.models import Instance, InstanceFault
from tests.factories import give_address, host_up, make_server

from .conftest import signed_in

pytestmark = pytest.mark.django_db


def test_the_table_lists_only_the_selected_projects_instances(member, other):
    make_server(member, "alpha-vm")
    make_server(other, "beta-vm")
    page = signed_in(member).get("/instances/").content.decode()
    assert "alpha-vm" in page and "beta-vm" not in page


def test_a_member_is_offered_the_actions_the_state_allows(member):
    active = make_server(member, "running-vm")
    stopped = make_server(member, "stopped-vm", vm_state="stopped", power_state="shutdown")
    page = signed_in(member).get("/instances/").content.decode()
    assert f"/instances/{active.uuid}/do/stop" in page
    assert f"/instances/{active.uuid}/do/start" not in page
    assert f"/instances/{stopped.uuid}/do/start" in page
    assert f"/instances/{stopped.uuid}/do/stop" not in page
    assert f"/instances/{stopped.uuid}/do/pause" not in page


def test_an_instance_that_is_resizing_offers_confirm_and_revert_only_after_it(member):
    vm = make_server(member, "resized", vm_state="resized",
                     old_flavor_snapshot={"id": "1", "name": "m1.tiny"})
    page = signed_in(member).get(f"/instances/{vm.uuid}/").content.decode()
    assert f"/instances/{vm.uuid}/do/confirm_resize" in page
    assert f"/instances/{vm.uuid}/do/revert_resize" in page
    assert f"/instances/{vm.uuid}/do/resize\"" not in page


def test_a_reader_sees_no_action_buttons(reader, member):
    vm = make_server(member, "shared-vm")
    client = signed_in(reader)
    for path in ("/instances/", f"/instances/{vm.uuid}/", "/"):
        page = client.get(path).content.decode()
        assert "shared-vm" in page
        assert "/do/" not in page, path
        assert "Launch instance" not in page


def test_a_reader_posting_an_action_is_refused_and_nothing_changes(reader, member, sent):
    vm = make_server(member, "shared-vm")
    client = signed_in(reader)
    assert client.get(f"/instances/{vm.uuid}/do/stop").status_code == 403
    response = client.post(f"/instances/{vm.uuid}/do/stop")
    assert response.status_code == 403
    assert "does not allow" in response.content.decode()
    vm.refresh_from_db()
    assert vm.task_state is None and not sent
    assert client.post(f"/instances/{vm.uuid}/do/delete").status_code == 403
    assert Instance.objects.filter(pk=vm.pk, deleted=False).exists()


def test_another_projects_instance_is_not_found_anywhere(member, other, sent):
    vm = make_server(member, "alpha-vm")
    client = signed_in(other)
    for path in ("", "log/", "actions/", "console/", "summary", "row", "do/stop"):
        assert client.get(f"/instances/{vm.uuid}/{path}").status_code == 404, path
    assert client.post(f"/instances/{vm.uuid}/do/delete").status_code == 404
    assert client.get("/instances/not-a-uuid/").status_code == 404
    vm.refresh_from_db()
    assert vm.task_state is None and not sent


def test_stopping_asks_for_confirmation_then_goes_through_the_service(member, sent):
    vm = make_server(member, "vm1")
    client = signed_in(member)
    confirm = client.get(f"/instances/{vm.uuid}/do/stop").content.decode()
    assert "Shut down vm1?" in confirm and 'method="post"' in confirm
    vm.refresh_from_db()
    assert vm.task_state is None  # a GET changes nothing
    response = client.post(f"/instances/{vm.uuid}/do/stop", {"next": "/instances/"})
    assert response.status_code == 302 and response["Location"] == "/instances/"
    vm.refresh_from_db()
    assert vm.task_state == "powering-off"
    assert vm.actions.filter(action="stop").exists()


def test_an_action_the_state_no_longer_allows_says_why(member, sent):
    vm = make_server(member, "vm1", vm_state="stopped")
    response = signed_in(member).post(f"/instances/{vm.uuid}/do/stop")
    assert response.status_code == 409
    assert "Cannot 'stop' instance" in html.unescape(response.content.decode())


def test_resize_needs_a_flavor_and_snapshot_a_name(member, flavor, big_flavor, sent, image):
    from cloud.compute.models import ComputeNode

    service = host_up("compute1")
    ComputeNode.objects.create(service=service, host="compute1", hypervisor_hostname="compute1",
                               vcpus=16, memory_mb=32768, local_gb=100)
    vm = make_server(member, "vm1", flavor=flavor, image_ref=str(image.id))
    client = signed_in(member)
    form = client.get(f"/instances/{vm.uuid}/do/resize").content.decode()
    assert "m1.big" in form and 'value="1"' not in form  # not the flavor it already has
    assert client.post(f"/instances/{vm.uuid}/do/resize", {"flavor": "nope"}).status_code == 400
    assert client.post(f"/instances/{vm.uuid}/do/snapshot", {"name": ""}).status_code == 400
    vm.refresh_from_db()
    assert vm.task_state is None
    assert client.post(f"/instances/{vm.uuid}/do/snapshot", {"name": "snap"}).status_code == 302
    vm.refresh_from_db()
    assert vm.task_state == "image_snapshot"


def test_a_locked_instance_offers_a_member_only_unlock(member):
    vm = make_server(member, "vm1", locked=True)
    page = signed_in(member).get(f"/instances/{vm.uuid}/").content.decode()
    assert f"/instances/{vm.uuid}/do/unlock" in page
    assert f"/instances/{vm.uuid}/do/stop" not in page
    assert f"/instances/{vm.uuid}/do/delete" not in page


def test_delete_from_the_instance_page_returns_to_the_table(member, sent):
    vm = make_server(member, "vm1", host=None, vm_state="error")
    response = signed_in(member).post(
        f"/instances/{vm.uuid}/do/delete", {"next": f"/instances/{vm.uuid}/"}
    )
    assert response["Location"] == "/instances/"
    vm.refresh_from_db()
    assert vm.deleted  # it never had a host, so the service finished the delete at once


def test_a_failed_boot_explains_which_filter_removed_which_hosts(member, admin):
    vm = make_server(member, "doomed", vm_state="error", host=None)
    InstanceFault.objects.create(
        instance=vm, code=500,
        message="No valid host was found. There are not enough hosts available. "
                "(RamFilter removed 2 of 3 hosts; VcpuFilter removed 1 of 3 hosts)",
        details="3 hosts considered.\nRamFilter removed 2 hosts (c1, c2).",
    )
    page = signed_in(member).get(f"/instances/{vm.uuid}/").content.decode()
    assert "No valid host was found" in page
    assert "2 of 3 hosts: not enough free memory (RamFilter)" in page
    assert "1 of 3 hosts: not enough free vCPUs (VcpuFilter)" in page
    assert "c1, c2" not in page  # host names are for admins
    assert "c1, c2" in signed_in(admin).get(f"/instances/{vm.uuid}/").content.decode()
    table = signed_in(member).get("/instances/").content.decode()
    assert "No valid host was found" in table


def test_filter_sort_and_pages_happen_in_the_database(member, other):
    for n in range(30):
        make_server(member, f"web-{n:02d}", vm_state="active" if n % 3 else "stopped")
    make_server(other, "web-foreign")
    client = signed_in(member)
    page = client.get("/instances/?sort=name&per_page=10").content.decode()
    assert "1–10 of 30 instances" in page
    assert page.index("web-00") < page.index("web-09") and "web-10" not in page
    second = client.get("/instances/?sort=-name&per_page=10&page=2").content.decode()
    assert "web-19" in second and "web-10" in second and "web-20" not in second
    stopped = client.get("/instances/?status=SHUTOFF&q=web-0").content.decode()
    assert "1–4 of 4 instances" in stopped  # web-00, 03, 06, 09
    assert "web-foreign" not in client.get("/instances/?q=foreign").content.decode()


def test_a_page_of_the_table_costs_the_same_queries_for_3_or_60_instances(
    member, django_assert_max_num_queries
):
    client = signed_in(member)
    for n in range(3):
        give_address(make_server(member, f"few-{n}"), addr=f"10.0.0.{n + 10}")
    with django_assert_max_num_queries(12) as few:
        client.get("/instances/")
    for n in range(60):
        give_address(make_server(member, f"many-{n}"), addr=f"10.0.1.{n + 10}")
    with django_assert_max_num_queries(len(few.captured_queries)):
        page = client.get("/instances/?per_page=50").content.decode()
    assert "10.0.1.69" in page


def test_htmx_gets_only_the_table(member):
    make_server(member, "vm1")
    response = signed_in(member).get(
        "/instances/?q=vm", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="instance-table"
    )
    fragment = response.content.decode()
    assert fragment.startswith('<div id="instance-table">') and "<nav" not in fragment


def test_the_action_log_lists_actions_and_events_for_admins_only(member, admin):
    from cloud.compute.models import InstanceAction, InstanceActionEvent

    vm = make_server(member, "vm1")
    action = InstanceAction.objects.create(instance=vm, action="create", request_id="req-1",
                                           user_id=member.user.pk, project_id=member.project.pk)
    InstanceActionEvent.objects.create(action=action, event="compute_spawn", result="Success",
                                       host="compute1")
    page = signed_in(member).get(f"/instances/{vm.uuid}/actions/").content.decode()
    assert "req-1" in page and "compute_spawn" not in page
    assert "compute_spawn" in signed_in(admin).get(f"/instances/{vm.uuid}/actions/").content.decode()


def test_the_console_tab_frames_a_fresh_console_link(member, reader):
    from cloud.compute.models import ComputeNode, ConsoleToken

    service = host_up("compute1")
    ComputeNode.objects.create(service=service, host="compute1", hypervisor_hostname="compute1")
    vm = make_server(member, "vm1", console_port=5900)
    response = signed_in(member).get(f"/instances/{vm.uuid}/console/")
    page = response.content.decode()
    assert '<iframe class="console" src="/console-frame/?token=' in page
    assert response["Cache-Control"] == "no-store"
    assert ConsoleToken.objects.filter(instance=vm).count() == 1
    token = page.split("/console-frame/?token=", 1)[1].split('"', 1)[0]
    frame = signed_in(member).get(f"/console-frame/?token={token}")
    assert frame["X-Frame-Options"] == "SAMEORIGIN"
    assert "no-referrer" in frame["Referrer-Policy"]
    denied = signed_in(reader).get(f"/instances/{vm.uuid}/console/").content.decode()
    assert "Console not available" in denied and "iframe" not in denied


def test_the_console_tab_says_why_a_stopped_instance_has_no_console(member):
    vm = make_server(member, "vm1", vm_state="stopped")
    page = signed_in(member).get(f"/instances/{vm.uuid}/console/").content.decode()
    assert "Console not available" in page


def test_the_log_tab_loads_the_console_output_separately(member, monkeypatch):
    from cloud.compute import guest_operations

    vm = make_server(member, "vm1")
    monkeypatch.setattr(guest_operations, "console_output", lambda ctx, inst, length: "login: _")
    client = signed_in(member)
    assert "/log/output" in client.get(f"/instances/{vm.uuid}/log/").content.decode()
    assert "login: _" in client.get(f"/instances/{vm.uuid}/log/output").content.decode()


def test_signed_out_visitors_are_sent_to_sign_in(member):
    from django.test import Client

    response = Client().get("/instances/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_an_instance_whose_host_went_silent_is_marked_and_offers_only_what_works(member):
    vm = make_server(member, "vm1")
    client = signed_in(member)
    assert "data-host-silent" not in client.get("/instances/").content.decode()
    host_up("compute1", up=False)
    table = client.get("/instances/").content.decode()
    assert "host not responding" in table
    assert f"/instances/{vm.uuid}/do/stop" not in table  # would be refused: the host is silent
    assert f"/instances/{vm.uuid}/do/delete" in table  # still works, locally
    page = client.get(f"/instances/{vm.uuid}/").content.decode()
    assert "Its host is not responding" in page and "compute1" not in page.split("<main")[-1]


def test_the_console_tab_says_a_test_driver_host_has_no_graphical_console(member):
    from cloud.compute.models import ComputeNode, ConsoleToken

    service = host_up("compute1")
    ComputeNode.objects.create(service=service, host="compute1", hypervisor_hostname="compute1",
                               hypervisor_type="TEST")
    vm = make_server(member, "vm1")  # ACTIVE, but its host reported no VNC display
    page = signed_in(member).get(f"/instances/{vm.uuid}/console/").content.decode()
    assert "This host&#x27;s hypervisor has no graphical console" in page
    assert "not running" not in page and "iframe" not in page
    assert not ConsoleToken.objects.exists()  # no link that could only fail


def test_the_console_tab_says_when_a_real_host_has_not_reported_the_screen_yet(member):
    from cloud.compute.models import ComputeNode

    service = host_up("compute1")
    ComputeNode.objects.create(service=service, host="compute1", hypervisor_hostname="compute1",
                               hypervisor_type="QEMU")
    vm = make_server(member, "vm1")
    page = signed_in(member).get(f"/instances/{vm.uuid}/console/").content.decode()
    assert "has not reported this instance&#x27;s screen yet" in page
    assert "not running" not in page
