"""/os-quota-sets through the API, and quotas refusing what would exceed them (server create,
server groups), with usage always counted from the rows that exist."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections, transaction

from cloud.compute import quotas
from cloud.compute.models import Instance, KeyPair, ServerGroup, ServerGroupMember
from cloud.identity.models import Project, Quota, UserQuota
from tests.factories import boot

V = "/compute/v2.1"
ENFORCED = {
    "instances": 10, "cores": 20, "ram": 51200, "metadata_items": 128, "key_pairs": 100,
    "server_groups": 10, "server_group_members": 10,
}
NETWORK = {"fixed_ips": -1, "floating_ips": 10, "security_groups": 10, "security_group_rules": 20}
PERSONALITY = {
    "injected_files": 5, "injected_file_content_bytes": 10240, "injected_file_path_bytes": 255,
}
ALL_21 = {**ENFORCED, **NETWORK, **PERSONALITY}


def _instance(persona, *, vcpus=1, memory_mb=512, deleted=False, name="vm") -> Instance:
    return Instance.objects.create(
        display_name=name, project=persona.project, user=persona.user,
        vcpus=vcpus, memory_mb=memory_mb, root_gb=1, deleted=deleted,
    )


def _limit(persona, resource: str, value: int) -> None:
    Quota.objects.update_or_create(
        project=persona.project, resource=resource, defaults={"hard_limit": value}
    )


# --- show, defaults, detail


@pytest.mark.parametrize(
    "version, expected",
    [
        ("2.1", ALL_21),
        ("2.35", ALL_21),
        ("2.36", {**ENFORCED, **PERSONALITY}),
        ("2.56", {**ENFORCED, **PERSONALITY}),
        ("2.57", ENFORCED),
        ("2.60", ENFORCED),
    ],
)
def test_a_member_sees_their_projects_quotas_with_the_keys_of_the_version(
    member, api_as, version, expected
):
    response = api_as(member, version).get(f"{V}/os-quota-sets/{member.project.id}")
    assert response.status_code == 200, response.content
    assert response.json() == {"quota_set": {"id": member.project.id, **expected}}


def test_a_projects_own_limits_replace_the_defaults_where_set(member, api_as):
    _limit(member, "instances", 3)
    _limit(member, "cores", -1)
    quota_set = api_as(member).get(f"{V}/os-quota-sets/{member.project.id}").json()["quota_set"]
    assert (quota_set["instances"], quota_set["cores"], quota_set["ram"]) == (3, -1, 51200)


def test_defaults_come_from_settings(member, api_as, settings):
    settings.KUMO_DEFAULT_QUOTAS = {**settings.KUMO_DEFAULT_QUOTAS, "instances": 42}
    quota_set = api_as(member).get(f"{V}/os-quota-sets/{member.project.id}").json()["quota_set"]
    assert quota_set["instances"] == 42


def test_a_reader_sees_their_own_projects_quotas(reader, api_as):
    assert api_as(reader).get(f"{V}/os-quota-sets/{reader.project.id}").status_code == 200


def test_a_member_asking_for_another_projects_quotas_is_403(member, other, api_as):
    for suffix in ("", "/detail"):
        response = api_as(member).get(f"{V}/os-quota-sets/{other.project.id}{suffix}")
        assert response.status_code == 403
        assert set(response.json()) == {"forbidden"}


def test_an_admin_sees_any_projects_quotas(admin, other, api_as):
    _limit(other, "instances", 4)
    response = api_as(admin).get(f"{V}/os-quota-sets/{other.project.id}")
    assert response.status_code == 200
    assert response.json()["quota_set"]["instances"] == 4


def test_defaults_ignore_the_projects_own_limits_and_anyone_may_read_them(
    member, other, api_as
):
    _limit(other, "instances", 4)
    response = api_as(member, "2.57").get(f"{V}/os-quota-sets/{other.project.id}/defaults")
    assert response.status_code == 200
    assert response.json() == {"quota_set": {"id": other.project.id, **ENFORCED}}


def test_detail_reports_usage_counted_from_the_rows_that_exist(member, other, api_as):
    _instance(member, vcpus=2, memory_mb=1024)
    _instance(member, vcpus=4, memory_mb=2048)
    _instance(member, vcpus=8, memory_mb=4096, deleted=True)  # gone: not counted
    _instance(other, vcpus=1, memory_mb=512)  # someone else's project
    ServerGroup.objects.create(name="g", project=member.project, user=member.user, policy="affinity")
    KeyPair.objects.create(user=member.user, name="k", public_key="x", fingerprint="f")
    _limit(member, "instances", 5)

    response = api_as(member, "2.57").get(f"{V}/os-quota-sets/{member.project.id}/detail")
    assert response.status_code == 200
    quota_set = response.json()["quota_set"]
    assert quota_set.pop("id") == member.project.id
    assert set(quota_set) == set(ENFORCED)
    assert quota_set["instances"] == {"in_use": 2, "limit": 5, "reserved": 0}
    assert quota_set["cores"] == {"in_use": 6, "limit": 20, "reserved": 0}
    assert quota_set["ram"] == {"in_use": 3072, "limit": 51200, "reserved": 0}
    assert quota_set["server_groups"] == {"in_use": 1, "limit": 10, "reserved": 0}
    assert quota_set["key_pairs"] == {"in_use": 1, "limit": 100, "reserved": 0}
    assert quota_set["metadata_items"]["in_use"] == 0  # a per-server limit, not a total

    live = Instance.objects.filter(project=member.project, deleted=False)
    assert quota_set["instances"]["in_use"] == live.count()


def test_detail_at_2_1_has_every_resource(member, api_as):
    quota_set = api_as(member).get(f"{V}/os-quota-sets/{member.project.id}/detail").json()
    assert set(quota_set["quota_set"]) == {"id", *ALL_21}
    assert quota_set["quota_set"]["floating_ips"] == {"in_use": 0, "limit": 10, "reserved": 0}


# --- update and reset


def test_an_admin_sets_limits_and_gets_the_whole_set_back_without_id(admin, other, api_as):
    api = api_as(admin, "2.57")
    body = {"quota_set": {"instances": 15, "cores": "30", "ram": -1}}
    response = api.put(f"{V}/os-quota-sets/{other.project.id}", body)
    assert response.status_code == 200, response.content
    assert response.json() == {
        "quota_set": {**ENFORCED, "instances": 15, "cores": 30, "ram": -1}
    }
    stored = dict(Quota.objects.filter(project=other.project).values_list("resource", "hard_limit"))
    assert stored == {"instances": 15, "cores": 30, "ram": -1}
    shown = api.get(f"{V}/os-quota-sets/{other.project.id}").json()["quota_set"]
    assert (shown["instances"], shown["cores"], shown["ram"]) == (15, 30, -1)


def test_the_reported_only_quotas_can_be_set_where_the_version_shows_them(admin, api_as):
    pid = admin.project.id
    response = api_as(admin).put(f"{V}/os-quota-sets/{pid}", {"quota_set": {"floating_ips": 3}})
    assert response.status_code == 200
    assert response.json()["quota_set"]["floating_ips"] == 3
    body = {"quota_set": {"floating_ips": 3}}
    assert api_as(admin, "2.36").put(f"{V}/os-quota-sets/{pid}", body).status_code == 400
    body = {"quota_set": {"injected_files": 3}}
    assert api_as(admin, "2.56").put(f"{V}/os-quota-sets/{pid}", body).status_code == 200
    assert api_as(admin, "2.57").put(f"{V}/os-quota-sets/{pid}", body).status_code == 400


@pytest.mark.parametrize(
    "quota_set",
    [
        {"bogus": 1},
        {"id": "x"},
        {"instances": -2},
        {"instances": "-2"},
        {"instances": 1.5},
        {"instances": "ten"},
        {"instances": True},
        {"instances": None},
        {"instances": 2**31},
        {"force": "maybe"},
    ],
)
def test_bad_quota_values_or_unknown_keys_are_400(admin, api_as, quota_set):
    response = api_as(admin).put(f"{V}/os-quota-sets/{admin.project.id}", {"quota_set": quota_set})
    assert response.status_code == 400, response.content
    assert not Quota.objects.exists()


def test_a_member_or_reader_may_not_set_or_reset_quotas(member, reader, api_as):
    body = {"quota_set": {"instances": 100}}
    for persona in (member, reader):
        api = api_as(persona)
        response = api.put(f"{V}/os-quota-sets/{persona.project.id}", body)
        assert response.status_code == 403
        assert set(response.json()) == {"forbidden"}
        assert api.delete(f"{V}/os-quota-sets/{persona.project.id}").status_code == 403
    assert not Quota.objects.exists()


def test_a_limit_below_usage_needs_force(admin, member, api_as):
    for _ in range(3):
        _instance(member)
    url = f"{V}/os-quota-sets/{member.project.id}"
    api = api_as(admin)
    response = api.put(url, {"quota_set": {"instances": 2}})
    assert response.status_code == 400
    assert "must be greater than or equal to already used and reserved 3" in (
        response.json()["badRequest"]["message"]
    )
    assert api.put(url, {"quota_set": {"instances": 3}}).status_code == 200
    assert api.put(url, {"quota_set": {"instances": -1}}).status_code == 200
    forced = api.put(url, {"quota_set": {"instances": 2, "force": "True"}})
    assert forced.status_code == 200
    assert forced.json()["quota_set"]["instances"] == 2


def test_setting_quotas_of_an_unknown_project_is_400(admin, api_as):
    body = {"quota_set": {"instances": 1}}
    assert api_as(admin).put(f"{V}/os-quota-sets/nope", body).status_code == 400


def test_delete_answers_202_and_puts_the_defaults_back(admin, other, api_as):
    _limit(other, "instances", 1)
    api = api_as(admin, "2.57")
    response = api.delete(f"{V}/os-quota-sets/{other.project.id}")
    assert response.status_code == 202
    assert not Quota.objects.filter(project=other.project).exists()
    shown = api.get(f"{V}/os-quota-sets/{other.project.id}").json()["quota_set"]
    assert shown == {"id": other.project.id, **ENFORCED}


# --- per-user quotas (?user_id=)


def test_an_admin_limits_one_user_within_a_project_and_reads_it_back(admin, member, api_as):
    api = api_as(admin, "2.57")
    project, user = member.project.id, member.user.id
    _instance(member, memory_mb=512)
    _instance(admin, memory_mb=1024)  # another user of the project: not the user's usage
    response = api.put(f"{V}/os-quota-sets/{project}?user_id={user}", {"quota_set": {"ram": "2048"}})
    assert response.status_code == 200 and response.json()["quota_set"]["ram"] == 2048
    shown = api.get(f"{V}/os-quota-sets/{project}?user_id={user}").json()["quota_set"]
    assert shown == {"id": project, **ENFORCED, "ram": 2048}
    assert api.get(f"{V}/os-quota-sets/{project}").json()["quota_set"]["ram"] == 51200
    detail = api.get(f"{V}/os-quota-sets/{project}/detail?user_id={user}").json()["quota_set"]
    assert detail["ram"] == {"limit": 2048, "in_use": 512, "reserved": 0}
    assert detail["instances"] == {"limit": 10, "in_use": 1, "reserved": 0}


@pytest.mark.parametrize("value", [5000, -1])
def test_a_users_limit_above_the_projects_is_400(admin, member, api_as, value):
    _limit(member, "ram", 4096)
    response = api_as(admin).put(f"{V}/os-quota-sets/{member.project.id}?user_id={member.user.id}",
                                 {"quota_set": {"ram": value}})
    assert response.status_code == 400
    assert "must be less than or equal to 4096" in response.json()["badRequest"]["message"]
    assert not UserQuota.objects.exists()


def test_a_user_at_their_own_limit_cannot_boot_while_others_in_the_project_can(
    admin, member, api_as, tiny, image
):
    UserQuota.objects.create(project=member.project, user_id=member.user.id,
                             resource="instances", hard_limit=1)
    _instance(member)
    response = boot(api_as(member), image)
    assert response.status_code == 403
    assert response.json()["forbidden"]["message"] == (
        "Quota exceeded for instances: Requested 1, but already used 1 of 1 instances")
    assert boot(api_as(admin), image).status_code == 202


def test_delete_with_a_user_drops_only_that_users_limits(admin, member, api_as):
    _limit(member, "ram", 4096)
    UserQuota.objects.create(project=member.project, user_id=member.user.id, resource="ram",
                             hard_limit=1024)
    api = api_as(admin)
    url = f"{V}/os-quota-sets/{member.project.id}"
    assert api.delete(f"{url}?user_id={member.user.id}").status_code == 202
    assert not UserQuota.objects.exists()
    assert api.get(f"{url}?user_id={member.user.id}").json()["quota_set"]["ram"] == 4096


# --- enforcement


def test_booting_past_the_instance_quota_is_403_and_creates_nothing(
    member, api_as, tiny, image
):
    _limit(member, "instances", 10)
    for i in range(9):
        _instance(member, name=f"old-{i}")
    response = boot(api_as(member), image, min_count=3, max_count=3)
    assert response.status_code == 403
    assert response.json() == {
        "forbidden": {
            "code": 403,
            "message": "Quota exceeded for instances: Requested 3, but already used 9 of 10 "
            "instances",
        }
    }
    assert Instance.objects.filter(project=member.project).count() == 9


def test_cores_and_ram_are_checked_together_and_named_in_the_message(
    member, api_as, tiny, image
):
    _limit(member, "cores", 2)
    _limit(member, "ram", 256)
    _instance(member, vcpus=1, memory_mb=200)
    response = boot(api_as(member), image, min_count=2, max_count=2)
    assert response.status_code == 403
    assert response.json()["forbidden"]["message"] == (
        "Quota exceeded for cores, ram: Requested 2, 256, but already used 1, 200 of 2, 256 "
        "cores, ram"
    )
    assert Instance.objects.count() == 1


def test_deleted_servers_free_their_quota(member, api_as, tiny, image):
    _limit(member, "instances", 1)
    _instance(member, deleted=True)
    assert boot(api_as(member), image).status_code == 202
    assert boot(api_as(member), image).status_code == 403


def test_an_unlimited_quota_never_refuses(member, api_as, tiny, image):
    _limit(member, "instances", -1)
    for i in range(10):
        _instance(member, name=f"old-{i}")
    assert boot(api_as(member), image).status_code == 202


def test_one_projects_servers_do_not_count_against_another(member, other, api_as, tiny, image):
    _limit(member, "instances", 1)
    _instance(other)
    _instance(other)
    assert boot(api_as(member), image).status_code == 202


def test_more_metadata_items_than_allowed_on_a_new_server_is_403(member, api_as, tiny, image):
    _limit(member, "metadata_items", 2)
    response = boot(api_as(member), image, metadata={"a": "1", "b": "2", "c": "3"})
    assert response.status_code == 403
    assert response.json()["forbidden"]["message"].startswith(
        "Quota exceeded for metadata_items"
    )
    assert not Instance.objects.exists()
    assert boot(api_as(member), image, metadata={"a": "1", "b": "2"}).status_code == 202


def test_a_full_server_group_refuses_another_member(member, api_as, tiny, image):
    _limit(member, "server_group_members", 1)
    group = ServerGroup.objects.create(
        name="g", project=member.project, user=member.user, policy="soft-affinity"
    )
    hints = {"group": str(group.uuid)}
    assert boot(api_as(member), image, hints).status_code == 202
    response = boot(api_as(member), image, hints)
    assert response.status_code == 403
    assert response.json()["forbidden"]["message"] == (
        "Quota exceeded for server_group_members: Requested 1, but already used 1 of 1 "
        "server_group_members"
    )
    assert ServerGroupMember.objects.filter(group=group).count() == 1
    assert Instance.objects.count() == 1


def test_a_deleted_member_leaves_room_in_its_group(member, api_as, tiny, image):
    _limit(member, "server_group_members", 1)
    group = ServerGroup.objects.create(
        name="g", project=member.project, user=member.user, policy="soft-affinity"
    )
    ServerGroupMember.objects.create(group=group, instance=_instance(member, deleted=True))
    assert boot(api_as(member), image, {"group": str(group.uuid)}).status_code == 202


def test_the_server_group_quota_refuses_one_group_too_many(member, api_as):
    _limit(member, "server_groups", 1)
    api = api_as(member)
    body = {"server_group": {"name": "g", "policies": ["affinity"]}}
    assert api.post(f"{V}/os-server-groups", body).status_code == 200
    response = api.post(f"{V}/os-server-groups", body)
    assert response.status_code == 403
    assert "Quota exceeded for server_groups" in response.json()["forbidden"]["message"]
    assert ServerGroup.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_reserve_outside_a_transaction_is_a_programming_error():
    project = Project.objects.create(name="solo")
    with pytest.raises(RuntimeError):
        quotas.reserve(project.id, {"instances": 1})
    with transaction.atomic():
        quotas.reserve(project.id, {"instances": 1})  # inside one, it simply passes


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs PostgreSQL (set DATABASE_URL=postgres://…): SQLite serialises every writer",
)
def test_concurrent_reservations_never_overshoot_the_limit():
    from cloud.identity.models import User

    project = Project.objects.create(name="racing")
    user = User.objects.create_user("racer", "pw")
    Quota.objects.create(project=project, resource="instances", hard_limit=3)
    start = threading.Barrier(8)
    outcomes: list[str] = []

    def boot_one(i: int) -> None:
        try:
            start.wait()
            with transaction.atomic():
                quotas.reserve(project.id, {"instances": 1})
                Instance.objects.create(
                    display_name=f"vm-{i}", project=project, user=user,
                    vcpus=1, memory_mb=64, root_gb=1,
                )
            outcomes.append("ok")
        except Exception as exc:  # noqa: BLE001 (the refusal is the point)
            outcomes.append(type(exc).__name__)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=boot_one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["OverLimit"] * 5 + ["ok"] * 3
    assert Instance.objects.filter(project=project, deleted=False).count() == 3
