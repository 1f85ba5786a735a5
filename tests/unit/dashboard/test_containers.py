"""Issue 19 in the dashboard: containers and VMs are marked, a container is not offered what it
would refuse, and its console tab is its text console instead of a VNC screen."""

from __future__ import annotations

import re

from django.core.cache import cache

from cloud import rpc
from cloud.compute.guest_operations import console_key
from cloud.compute.models import ConsoleToken
from tests.factories import make_server
from tests.unit.dashboard.conftest import signed_in

# What a container refuses (409) and so is never offered; what it can do and so is.
HIDDEN = ["migrate", "live_migrate", "rescue", "suspend"]
SHOWN = ["stop", "reboot", "reboot_hard", "pause", "rebuild", "resize", "snapshot", "backup",
         "shelve", "delete"]


def _offered(page: str, instance) -> set[str]:
    return set(re.findall(rf'href="/instances/{instance.uuid}/do/([a-z_]+)', page))


def _kind(page: str, instance) -> str:
    row = page.split(f'data-instance="{instance.uuid}"', 1)[1].split("</tr>", 1)[0]
    return re.search(r'data-guest-kind="([a-z]+)"', row).group(1)


def test_the_table_marks_containers_and_vms_and_offers_a_container_only_what_it_can_do(
    admin, container, vm
):
    page = signed_in(admin).get("/instances/").content.decode()
    assert (_kind(page, container), _kind(page, vm)) == ("container", "vm")
    assert '>container</span>' in page and '>VM</span>' in page
    offered_ct, offered_vm = _offered(page, container), _offered(page, vm)
    assert offered_ct.isdisjoint(HIDDEN), offered_ct & set(HIDDEN)
    assert set(SHOWN) <= offered_ct
    assert set(HIDDEN) <= offered_vm  # an admin is offered them all on a VM


def test_the_instance_page_marks_a_container_and_hides_what_it_refuses(admin, container):
    page = signed_in(admin).get(f"/instances/{container.uuid}/").content.decode()
    summary = page.split('id="instance-summary"', 1)[1].split("</section>", 1)[0]
    assert 'data-guest-kind="container"' in summary
    actions = set(re.findall(r'data-action="([a-z_]+)"', summary))
    assert actions.isdisjoint(HIDDEN) and set(SHOWN) <= actions


def test_a_server_being_built_on_no_host_is_marked_by_its_image(member, ct_image):
    building = make_server(member, "ct2", image_ref=str(ct_image.id), host=None, node=None,
                           vm_state="building", task_state="scheduling")
    page = signed_in(member).get("/instances/").content.decode()
    assert _kind(page, building) == "container"


def test_a_hidden_action_posted_anyway_is_refused_with_the_reason(member, container, sent):
    response = signed_in(member).post(f"/instances/{container.uuid}/do/rescue", {})
    assert response.status_code == 409
    assert "no rescue disk" in response.content.decode()
    assert sent == []


def test_the_console_tab_of_a_container_is_its_text_console(member, reader, container,
                                                             monkeypatch):
    def host_answers(name, args, queue, **_):
        cache.set(console_key(args[0]["request_id"]),
                  {"output": f"kumo-tiny-ct: ct1 {container.uuid} up"}, 60)

    monkeypatch.setattr(rpc.app, "send_task", host_answers)
    client = signed_in(member)
    response = client.get(f"/instances/{container.uuid}/console/")
    page = response.content.decode()
    assert "iframe" not in page and not ConsoleToken.objects.exists()
    console = page.split("data-text-console", 1)[1].split(">", 1)[0]
    assert f'hx-get="/instances/{container.uuid}/log/output"' in console
    assert 'hx-trigger="load, every 5s"' in console
    output = client.get(f"/instances/{container.uuid}/log/output").content.decode()
    assert f"kumo-tiny-ct: ct1 {container.uuid} up" in output
    denied = signed_in(reader).get(f"/instances/{container.uuid}/console/").content.decode()
    assert "Console not available" in denied and "data-text-console" not in denied


def test_the_console_tab_of_a_vm_still_frames_its_screen(member, vm):
    page = signed_in(member).get(f"/instances/{vm.uuid}/console/").content.decode()
    assert '<iframe class="console"' in page and "data-text-console" not in page


def test_a_volume_can_be_attached_to_a_vm_but_a_container_is_not_offered(member, container, vm):
    from cloud.volumes.models import Volume

    volume = Volume.objects.create(project=member.project, size=1, status="available",
                                   name="data")
    page = signed_in(member).get(f"/volumes/{volume.id}/").content.decode()
    form = page.split('id="attach-form"', 1)[1].split("</form>", 1)[0]
    assert f'value="{vm.uuid}"' in form
    assert f'value="{container.uuid}"' not in form


def test_the_rebuild_form_offers_only_images_of_the_servers_kind(member, container, vm,
                                                                 ct_image, image):
    client = signed_in(member)
    for server, own, other in ((container, ct_image, image), (vm, image, ct_image)):
        form = client.get(f"/instances/{server.uuid}/do/rebuild").content.decode()
        assert f'value="{own.id}"' in form
        assert f'value="{other.id}"' not in form
