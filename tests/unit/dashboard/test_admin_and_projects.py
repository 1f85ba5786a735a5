"""Operator pages (admin role only) and project switching."""

from __future__ import annotations

import pytest

from cloud.compute.models import ComputeNode, Flavor, Service
from cloud.dashboard.context import SESSION_KEY
from cloud.identity.models import Project, Role, RoleAssignment
from tests.factories import make_server
from tests.personas import make_persona

from .conftest import signed_in

pytestmark = pytest.mark.django_db

ADMIN_PAGES = [
    "/manage/", "/manage/hypervisors/", "/manage/services/", "/manage/flavors/",
    "/manage/aggregates/", "/manage/instances/", "/manage/projects/", "/manage/users/",
]


@pytest.fixture
def compute_host(db):
    service = Service.objects.create(host="compute1", binary="nova-compute")  # never reported
    return ComputeNode.objects.create(service=service, host="compute1",
                                      hypervisor_hostname="compute1", vcpus=4, memory_mb=4096,
                                      local_gb=40, vcpus_used=12, memory_mb_used=1024)


@pytest.mark.parametrize("path", ADMIN_PAGES)
def test_admin_pages_answer_403_to_members_and_readers(member, reader, path):
    assert signed_in(member).get(path).status_code == 403
    assert signed_in(reader).get(path).status_code == 403


@pytest.mark.parametrize("path", ADMIN_PAGES)
def test_admin_pages_open_for_admins(admin, compute_host, path):
    response = signed_in(admin).get(path, follow=True)
    assert response.status_code == 200


def test_non_admins_see_no_admin_menu(member, admin):
    assert "/manage/hypervisors/" not in signed_in(member).get("/").content.decode()
    assert "/manage/hypervisors/" in signed_in(admin).get("/").content.decode()


def test_admin_forms_refuse_non_admins_and_change_nothing(member, compute_host):
    client = signed_in(member)
    service = compute_host.service
    assert client.post(f"/manage/services/{service.uuid}/", {"status": "disabled"}
                       ).status_code == 403
    assert client.post("/manage/flavors/", {"name": "x", "vcpus": 1, "ram": 1, "disk": 1}
                       ).status_code == 403
    assert client.post("/manage/projects/", {"name": "evil"}).status_code == 403
    assert client.post("/manage/roles/grant", {}).status_code == 403
    service.refresh_from_db()
    assert not service.disabled
    assert not Flavor.objects.filter(name="x").exists()
    assert not Project.objects.filter(name="evil").exists()


def test_hypervisors_show_use_against_capacity_times_ratio(admin, compute_host):
    page = signed_in(admin).get("/manage/hypervisors/").content.decode()
    assert "12 / 16 (4 × 4.0)" in page  # 4 cores at a 4.0 allocation ratio
    assert 'aria-label="75% of vCPUs claimed"' in page
    assert "down" in page  # it never sent a heartbeat


def test_an_admin_disables_and_forces_down_a_compute_service(admin, compute_host):
    service = compute_host.service
    response = signed_in(admin).post(f"/manage/services/{service.uuid}/", {
        "status": "disabled", "disabled_reason": "maintenance", "forced_down": "on",
    })
    assert response.status_code == 302
    service.refresh_from_db()
    assert service.disabled and service.disabled_reason == "maintenance" and service.forced_down


def test_an_admin_creates_a_flavor_and_an_aggregate_with_a_zone(admin, compute_host):
    client = signed_in(admin)
    assert client.post("/manage/flavors/", {"name": "m1.huge", "vcpus": 8, "ram": 16384,
                                            "disk": 80, "is_public": "on"}).status_code == 302
    assert Flavor.objects.get(name="m1.huge").vcpus == 8
    assert client.post("/manage/aggregates/", {"name": "rack1", "availability_zone": "az1"}
                       ).status_code == 302
    from cloud.compute.models import Aggregate

    rack = Aggregate.objects.get(name="rack1")
    assert client.post(f"/manage/aggregates/{rack.pk}/hosts", {f"agg{rack.pk}-host": "compute1"}
                       ).status_code == 302
    assert "az1" in client.get("/manage/aggregates/").content.decode()
    assert rack.hosts.filter(host="compute1").exists()


def test_all_instances_spans_projects_for_admins(admin, member, other):
    make_server(member, "alpha-vm")
    make_server(other, "beta-vm")
    page = signed_in(admin).get("/manage/instances/?sort=project").content.decode()
    assert "alpha-vm" in page and "beta-vm" in page and ">beta<" in page


def test_an_admin_grants_and_revokes_a_role(admin, other):
    client = signed_in(admin)
    reader_role = Role.objects.get_or_create(name="reader")[0]
    alpha = admin.project
    response = client.post("/manage/roles/grant", {
        "grant-user": other.user.pk, "grant-project": alpha.pk, "grant-role": reader_role.pk,
    })
    assert response.status_code == 302
    assert RoleAssignment.objects.filter(user=other.user, project=alpha, role=reader_role).exists()
    client.post(f"/manage/roles/{alpha.pk}/{other.user.pk}/{reader_role.pk}/revoke")
    assert not RoleAssignment.objects.filter(user=other.user, project=alpha,
                                             role=reader_role).exists()


# --- projects


def test_the_switcher_lists_the_users_projects_and_switches(member):
    make_persona("bob", "gamma", ["reader"])
    make_server(member, "alpha-vm")
    client = signed_in(member)
    page = client.get("/instances/").content.decode()
    assert ">alpha</option>" in page and ">gamma</option>" in page
    gamma = Project.objects.get(name="gamma")
    response = client.post("/project/", {"project": gamma.pk, "next": "/instances/x/log/"})
    assert response["Location"] == "/instances/"  # the section, not the old project's item
    page = client.get("/instances/").content.decode()
    assert "alpha-vm" not in page and "Launch instance" not in page  # a reader in gamma


def test_switching_to_a_project_without_a_role_is_not_found(member, other):
    client = signed_in(member)
    assert client.post("/project/", {"project": other.project.pk}).status_code == 404
    assert client.session[SESSION_KEY] == member.project.pk


def test_a_role_revoked_meanwhile_counts_at_once(member):
    vm = make_server(member, "vm1")
    client = signed_in(member)
    assert f"/instances/{vm.uuid}/do/stop" in client.get("/instances/").content.decode()
    RoleAssignment.objects.filter(user=member.user, role__name="member").delete()
    assert f"/instances/{vm.uuid}/do/stop" not in client.get("/instances/").content.decode()
    assert client.post(f"/instances/{vm.uuid}/do/stop").status_code == 403


def test_a_user_without_any_project_is_told_so(db):
    from cloud.identity.models import User

    lonely = User.objects.create_user("lonely", "pw-pw-pw-pw")
    from django.test import Client

    client = Client()
    client.force_login(lonely)
    response = client.get("/instances/")
    assert response.status_code == 403 and "No project yet" in response.content.decode()


def test_a_disabled_project_is_no_longer_selected(member):
    make_persona("bob", "gamma", ["member"])
    client = signed_in(member)
    Project.objects.filter(pk=member.project.pk).update(enabled=False)
    page = client.get("/instances/").content.decode()
    assert ">alpha</option>" not in page
    assert client.session[SESSION_KEY] == Project.objects.get(name="gamma").pk
