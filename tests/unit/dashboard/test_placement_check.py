"""The operators' "Where would it fit?" form: the scheduler's dry run as a table, admins only."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlparse

import pytest

from cloud.compute.models import (
    Aggregate,
    AggregateHost,
    ComputeNode,
    Flavor,
    InstanceFault,
    ServerGroup,
    ServerGroupMember,
)
from tests.factories import make_node, make_server

from .conftest import signed_in

URL = "/manage/placement-check/"


@pytest.fixture
def small(db) -> Flavor:
    return Flavor.objects.create(flavorid="2", name="m1.small", vcpus=1, memory_mb=2048,
                                 root_gb=10)


@pytest.fixture
def hosts(db):
    make_node("compute-1", disabled=True)
    full = make_node("compute-2", memory_mb=4096, ram_ratio=1.5)
    ComputeNode.objects.filter(pk=full.pk).update(memory_mb_used=4608)
    make_node("compute-3")
    zone = Aggregate.objects.create(name="second", availability_zone="az2")
    AggregateHost.objects.create(aggregate=zone, host="compute-3")
    make_node("compute-4", memory_mb=8192)


def _row(page: str, host: str) -> str:
    found = re.search(rf'<tr data-host="{host}".*?</tr>', page, re.DOTALL)
    assert found, f"no row for {host}"
    return found.group(0)


def test_the_form_shows_each_host_passing_or_removed_with_its_reason(admin, small, image, hosts):
    page = signed_in(admin).get(URL, {"flavor": "2", "image": str(image.id), "group": "",
                                      "zone": "nova"})

    assert page.status_code == 200
    text = page.content.decode()
    assert "Fits: 1 of 4 hosts pass" in text
    assert 'data-passed="yes"' in _row(text, "compute-4")
    assert "<td class=\"num\">1</td>" in _row(text, "compute-4")  # rank 1
    for host, reason in [
        ("compute-1", "Service: disabled by an operator"),
        ("compute-2", "RAM: needs 2048 MiB, 1536 free after the 1.5× ratio"),
        ("compute-3", "Zone: in az2, not nova"),
    ]:
        row = _row(text, host)
        assert 'data-passed="no"' in row and reason in row, row
    # the passing hosts come first, in the order a boot would try them
    assert [m for m in re.findall(r'<tr data-host="([^"]+)"', text)] == [
        "compute-4", "compute-1", "compute-3", "compute-2"]


def test_the_empty_form_offers_flavors_images_groups_and_zones(admin, small, image, hosts):
    page = signed_in(admin).get(URL)
    text = page.content.decode()
    assert page.status_code == 200
    assert 'value="2"' in text and "m1.small" in text and "cirros" in text
    assert 'value="az2"' in text and 'value="nova"' in text
    assert "<table" not in text


def test_what_a_boot_would_refuse_shows_on_the_form(admin, small, image, hosts):
    image.min_ram = 4096
    image.save()
    refused = signed_in(admin).get(URL, {"flavor": "2", "image": str(image.id)})
    assert refused.status_code == 200
    text = refused.content.decode()
    assert "Flavor&#x27;s memory is too small for requested image." in text
    assert "<table" not in text


@pytest.mark.parametrize("persona", ["member", "reader"])
def test_only_admins_see_the_form(persona, request, small, hosts):
    page = signed_in(request.getfixturevalue(persona)).get(URL, {"flavor": "2"})
    assert page.status_code == 403


def test_the_hypervisors_page_links_to_the_form_for_admins(admin, member, hosts):
    assert URL in signed_in(admin).get("/manage/hypervisors/").content.decode()


def test_a_failed_build_links_admins_to_the_form_asked_as_the_server_asked(admin, member):
    vm = make_server(member, "doomed", vm_state="error", host=None, availability_zone="nova",
                     image_ref="9b1d0f5e-0000-4000-8000-000000000000")
    group = ServerGroup.objects.create(name="spread", policy="anti-affinity",
                                       project=member.project, user=member.user)
    ServerGroupMember.objects.create(group=group, instance=vm)
    InstanceFault.objects.create(instance=vm, code=500, message="No valid host was found.",
                                 details="1 host considered.")

    page = signed_in(admin).get(f"/instances/{vm.uuid}/").content.decode()

    link = re.search(r'<a href="(/manage/placement-check/\?[^"]+)">Where would it fit now\?', page)
    assert link, "no link to the dry run"
    asked = parse_qs(urlparse(html.unescape(link.group(1))).query)
    assert asked == {"flavor": ["1"], "image": ["9b1d0f5e-0000-4000-8000-000000000000"],
                     "group": [str(group.uuid)], "zone": ["nova"]}
    assert "Where would it fit now?" not in signed_in(member).get(
        f"/instances/{vm.uuid}/").content.decode()
