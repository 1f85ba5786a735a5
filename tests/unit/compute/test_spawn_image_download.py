"""The image part of a spawn request: where the agent downloads the image and the short-lived token
it downloads with, which acts for the instance's own user and project and is never logged."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from cloud.compute.spawn import IMAGE_TOKEN_TTL, build_spawn_request
from cloud.identity import tokens
from cloud.identity.models import Role, RoleAssignment
from cloud.images.models import Image
from tests.factories import make_instance, owner

pytestmark = pytest.mark.django_db


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


def test_every_spawn_request_gets_a_fresh_token(image: Image, member: None) -> None:
    instance = make_instance(image_ref=str(image.id))
    first = build_spawn_request(instance, "r1").image.token
    second = build_spawn_request(instance, "r2").image.token
    assert first and second and first != second


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
