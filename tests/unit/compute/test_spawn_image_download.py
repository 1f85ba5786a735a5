"""The image part of a spawn request: where the agent downloads the image and the short-lived token
it downloads with, which acts for the instance's own user and project and is never logged, and is
shared by the boots of one user and project only while nothing identity holds has changed."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from cloud.compute.models import Instance
from cloud.compute.spawn import IMAGE_TOKEN_TTL, build_spawn_request
from cloud.identity import token_cache, tokens, transfer_tokens
from cloud.identity.models import Project, Role, RoleAssignment
from cloud.images.models import Image
from tests.factories import make_instance, owner

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_token_kept_from_another_test() -> None:
    transfer_tokens.forget()


@pytest.fixture
def image() -> Image:
    return Image.objects.create(
        name="tiny", disk_format="qcow2", size=4096, checksum="a" * 32, status="active"
    )


@pytest.fixture
def member() -> None:
    project, user = owner()
    role = Role.objects.get_or_create(name="member")[0]
    RoleAssignment.objects.get_or_create(user=user, project=project, role=role)


@override_settings(KUMO_INTERNAL_URL="http://10.0.0.2:8000/")
def test_the_download_url_is_the_image_apis_file_url_on_the_internal_address(
    image: Image, member: None
) -> None:
    request = build_spawn_request(make_instance(image_ref=str(image.id)), "r")
    assert request.image.url == f"http://10.0.0.2:8000/image/v2/images/{image.id}/file"


def test_the_download_token_acts_for_the_instances_user_and_project_briefly(
    image: Image, member: None
) -> None:
    instance = make_instance(image_ref=str(image.id))
    request = build_spawn_request(instance, "r")

    context = tokens.validate(request.image.token)
    assert context is not None
    assert (context.user_id, context.project_id) == (instance.user_id, instance.project_id)
    record = tokens.lookup(request.image.token)
    assert record.expires_at <= timezone.now() + timedelta(seconds=IMAGE_TOKEN_TTL)


def _token(instance: Instance) -> str:
    return build_spawn_request(instance, "r").image.token


def test_a_second_boot_of_the_same_user_and_project_reuses_the_token(
    image: Image, member: None
) -> None:
    first = _token(make_instance("a", image_ref=str(image.id)))
    another = make_instance("b", image_ref=str(image.id))
    with CaptureQueriesContext(connection) as queries:
        second = _token(another)

    assert first and second == first
    assert [q["sql"] for q in queries.captured_queries if '"identity_' in q["sql"]] == []


def test_a_token_revoked_is_not_handed_out_again(image: Image, member: None) -> None:
    instance = make_instance(image_ref=str(image.id))
    first = _token(instance)
    assert tokens.revoke(first)

    second = _token(instance)

    assert second and second != first
    assert tokens.validate(second) is not None


def test_a_role_removed_means_a_token_issued_afresh_with_the_roles_left(
    image: Image, member: None
) -> None:
    project, user = owner()
    reader = Role.objects.get_or_create(name="reader")[0]
    RoleAssignment.objects.create(user=user, project=project, role=reader)
    instance = make_instance(image_ref=str(image.id))
    first = _token(instance)

    RoleAssignment.objects.filter(user=user, project=project, role__name="member").delete()
    second = _token(instance)

    assert second and second != first
    assert tokens.validate(second).roles == ("reader",)
    RoleAssignment.objects.filter(user=user, project=project).delete()
    assert _token(instance) == ""  # no role left: no token at all, not the one kept


def test_any_identity_change_elsewhere_means_a_token_issued_afresh(
    image: Image, member: None
) -> None:
    instance = make_instance(image_ref=str(image.id))
    first = _token(instance)

    token_cache.before_change()  # what another process's change does to the shared generation
    token_cache.after_change()

    assert _token(instance) not in ("", first)


def test_a_token_past_a_third_of_its_life_or_of_another_project_is_not_reused(
    image: Image, member: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    instance = make_instance(image_ref=str(image.id))
    there = make_instance("there", image_ref=str(image.id))
    elsewhere = Project.objects.create(name="elsewhere")
    RoleAssignment.objects.create(user=instance.user, project=elsewhere,
                                  role=Role.objects.get(name="member"))
    there.project = elsewhere
    first = _token(instance)

    assert _token(there) not in ("", first)
    soon = timezone.now() + timedelta(seconds=IMAGE_TOKEN_TTL / 3 - 5)
    monkeypatch.setattr(transfer_tokens.timezone, "now", lambda: soon)
    assert _token(instance) == first
    later = soon + timedelta(seconds=10)
    monkeypatch.setattr(transfer_tokens.timezone, "now", lambda: later)
    assert _token(instance) not in ("", first)


def test_nothing_is_reused_when_the_identity_generation_cannot_be_read(
    image: Image, member: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(token_cache, "current_generation", lambda: None)
    instance = make_instance(image_ref=str(image.id))
    assert _token(instance) != _token(instance)


def test_a_user_without_access_gets_no_token_and_the_build_fails_on_download(
    image: Image, caplog: pytest.LogCaptureFixture
) -> None:
    request = build_spawn_request(make_instance(image_ref=str(image.id)), "r")
    assert request.image.token == ""
    assert request.image.url


def test_the_token_appears_in_no_log_line_and_no_repr(
    image: Image, member: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    request = build_spawn_request(make_instance(image_ref=str(image.id)), "r")
    token = request.image.token
    assert token
    assert token not in caplog.text
    assert token not in repr(request)


def test_the_request_tells_the_config_drive_who_owns_the_instance(
    image: Image, member: None
) -> None:
    instance = make_instance(image_ref=str(image.id))
    request = build_spawn_request(instance, "r")
    assert request.project_id == str(instance.project_id)
    assert request.launch_index == instance.launch_index
