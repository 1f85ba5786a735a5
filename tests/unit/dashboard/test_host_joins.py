"""Adding a host from the dashboard: the hypervisors page's "Add a host" button issues a one-time
join token for the named host and shows it once, with the command to run on the machine."""

from __future__ import annotations

import re

import pytest

from cloud.enrollment import join_tokens
from cloud.enrollment.models import JoinToken

from .conftest import signed_in

pytestmark = pytest.mark.django_db


def test_admins_see_the_button_and_members_no_page(admin, member):
    assert 'href="/manage/hypervisors/add-host"' in (
        signed_in(admin).get("/manage/hypervisors/").content.decode())
    assert signed_in(member).get("/manage/hypervisors/add-host").status_code == 403
    assert signed_in(member).post("/manage/hypervisors/add-host",
                                  {"host": "compute-7", "ttl_minutes": 10}).status_code == 403
    assert not JoinToken.objects.exists()


def test_the_token_is_shown_once_with_the_command_and_joins_as_that_host(admin, settings):
    settings.KUMO_INTERNAL_URL = "http://controller:8000"
    answer = signed_in(admin).post("/manage/hypervisors/add-host",
                                   {"host": "compute-7", "ttl_minutes": 10})
    assert answer.status_code == 201
    assert answer["Cache-Control"] == "no-store"
    page = answer.content.decode()
    token = re.search(r'data-testid="join-token">([0-9a-f]+)<', page).group(1)
    assert (f"python -m compute_agent join http://controller:8000 {token} --systemd") in page
    row = JoinToken.objects.get()
    assert 590 <= (row.expires_at - row.created_at).total_seconds() <= 610
    assert join_tokens.take(token).host == "compute-7"


def test_a_bad_host_name_is_shown_under_its_field(admin):
    answer = signed_in(admin).post("/manage/hypervisors/add-host",
                                   {"host": "compute 7", "ttl_minutes": 10})
    assert answer.status_code == 400
    assert "Invalid host name" in answer.content.decode()
    assert not JoinToken.objects.exists()
