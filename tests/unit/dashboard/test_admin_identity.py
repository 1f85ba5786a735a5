"""Operator pages for projects' quotas and users' passwords and removal: the same services and
rules as the quota and Keystone APIs."""

from __future__ import annotations

import html

import pytest

from cloud.compute import quotas
from cloud.identity.models import Quota, Token, User
from tests.factories import make_server
from tests.personas import make_persona

from .conftest import signed_in

pytestmark = pytest.mark.django_db


def _limits(**changes):
    values = {r: str(v) for r, v in quotas.default_limits().items()}
    values.update({k: str(v) for k, v in changes.items()})
    return values


def test_an_admin_edits_a_projects_quota_and_the_api_sees_it(admin, member, api_as):
    client = signed_in(admin)
    page = client.get(f"/manage/projects/{member.project.pk}/quotas").content.decode()
    assert 'name="instances"' in page and 'value="10"' in page
    response = client.post(f"/manage/projects/{member.project.pk}/quotas",
                           _limits(instances=3, cores=6))
    assert response.status_code == 302
    # Only what changed is the project's own; the rest keeps following the defaults.
    assert dict(Quota.objects.filter(project=member.project).values_list(
        "resource", "hard_limit")) == {"instances": 3, "cores": 6}
    shown = api_as(member).get(f"/compute/v2.1/os-quota-sets/{member.project.pk}")
    assert shown.json()["quota_set"]["instances"] == 3


def test_a_limit_below_usage_is_refused_on_its_field_unless_forced(admin, member):
    make_server(member, "vm1")
    make_server(member, "vm2")
    client = signed_in(admin)
    url = f"/manage/projects/{member.project.pk}/quotas"
    refused = client.post(url, _limits(instances=1))
    assert refused.status_code == 400
    assert "must be greater than or equal to already used and reserved 2" in html.unescape(
        refused.content.decode())
    assert not Quota.objects.filter(project=member.project).exists()
    assert client.post(url, {**_limits(instances=1), "force": "on"}).status_code == 302
    assert quotas.limits_for(member.project.pk)["instances"] == 1


def test_quotas_go_back_to_the_defaults(admin, member):
    Quota.objects.create(project=member.project, resource="instances", hard_limit=2)
    client = signed_in(admin)
    assert client.post(f"/manage/projects/{member.project.pk}/quotas/reset").status_code == 302
    assert not Quota.objects.filter(project=member.project).exists()


def test_members_cannot_see_or_change_quotas_here(member):
    client = signed_in(member)
    url = f"/manage/projects/{member.project.pk}/quotas"
    assert client.get(url).status_code == 403
    assert client.post(url, _limits(instances=50)).status_code == 403
    assert client.post(url + "/reset").status_code == 403
    assert not Quota.objects.exists()


def test_an_admin_sets_a_users_password_and_their_tokens_end(admin, member):
    client = signed_in(admin)
    url = f"/manage/users/{member.user.pk}/password"
    assert "New password for bob" in client.get(url).content.decode()
    mismatch = client.post(url, {"password": "long-enough-1", "confirm": "long-enough-2"})
    assert mismatch.status_code == 400 and "The two passwords differ." in mismatch.content.decode()
    assert client.post(url, {"password": "short", "confirm": "short"}).status_code == 400
    assert Token.objects.filter(user=member.user).exists()
    assert client.post(url, {"password": "a-new-password", "confirm": "a-new-password"}
                       ).status_code == 302
    member.user.refresh_from_db()
    assert member.user.check_password("a-new-password")
    assert not Token.objects.filter(user=member.user).exists()


def test_an_admin_deletes_a_user_but_not_one_who_owns_instances_nor_themselves(admin, member):
    leaving = make_persona("leaving", member.project.name, ["member"])
    client = signed_in(admin)
    page = client.get("/manage/users/").content.decode()
    assert f"/manage/users/{leaving.user.pk}/delete" in page
    assert f"/manage/users/{admin.user.pk}/delete" not in page  # not offered for yourself
    assert "Delete user leaving?" in client.get(
        f"/manage/users/{leaving.user.pk}/delete").content.decode()
    assert client.post(f"/manage/users/{leaving.user.pk}/delete").status_code == 302
    assert not User.objects.filter(pk=leaving.user.pk).exists()
    make_server(member, "vm1")
    refused = client.post(f"/manage/users/{member.user.pk}/delete", follow=True)
    assert "still owns" in html.unescape(refused.content.decode())
    assert User.objects.filter(pk=member.user.pk).exists()
    client.post(f"/manage/users/{admin.user.pk}/delete")
    assert User.objects.filter(pk=admin.user.pk).exists()


def test_members_cannot_reset_passwords_or_delete_users(member, reader):
    client = signed_in(member)
    assert client.post(f"/manage/users/{reader.user.pk}/password",
                       {"password": "taken-over!", "confirm": "taken-over!"}).status_code == 403
    assert client.post(f"/manage/users/{reader.user.pk}/delete").status_code == 403
    reader.user.refresh_from_db()
    assert not reader.user.check_password("taken-over!")
