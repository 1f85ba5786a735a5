"""Tokens validated from each web process's memory (cloud/identity/token_cache.py): a token used
again costs no SQL, and still every revocation, role removal, disabled user or project takes effect
at the very next request, whichever process made the change."""

from __future__ import annotations

import time

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from cloud.identity import generation, token_cache, tokens
from cloud.identity.models import Role, RoleAssignment
from tests.factories import boot

V = "/compute/v2.1"


def _identity_queries(api, path=f"{V}/servers") -> tuple[int, list[str]]:
    with CaptureQueriesContext(connection) as captured:
        status = api.get(path).status_code
    return status, [q["sql"] for q in captured.captured_queries if '"identity_' in q["sql"]]


def test_a_token_used_again_is_validated_without_sql(member, api_as):
    api = api_as(member)
    first_status, first = _identity_queries(api)
    status, again = _identity_queries(api)

    assert (first_status, status) == (200, 200)
    assert len(first) == 2  # the token with its user and project; the roles
    assert again == []


def test_a_revoked_token_is_refused_at_the_next_request(member, api_as):
    api = api_as(member)
    assert api.get(f"{V}/servers").status_code == 200  # remembered now

    revoke = api.client.delete("/identity/v3/auth/tokens", HTTP_X_AUTH_TOKEN=member.token,
                               HTTP_X_SUBJECT_TOKEN=member.token)

    assert revoke.status_code == 204
    assert api.get(f"{V}/servers").status_code == 401


def test_a_role_removed_is_refused_at_the_next_request(admin, member, api_as, tiny, image):
    api = api_as(member)
    assert api.get(f"{V}/servers").status_code == 200  # remembered, with the member role
    role = Role.objects.get(name="member")
    removed = api_as(admin).delete(
        f"/identity/v3/projects/{member.project.id}/users/{member.user.id}/roles/{role.id}")
    assert removed.status_code == 204

    response = boot(api, image)  # a reader may not boot

    assert response.status_code == 403, response.content
    assert api.get(f"{V}/servers").status_code == 200  # still a reader


def test_a_disabled_user_or_project_is_refused_at_the_next_request(member, other, api_as):
    assert api_as(member).get(f"{V}/servers").status_code == 200
    assert api_as(other).get(f"{V}/servers").status_code == 200

    member.user.enabled = False
    member.user.save()
    other.project.enabled = False
    other.project.save()

    assert api_as(member).get(f"{V}/servers").status_code == 401
    assert api_as(other).get(f"{V}/servers").status_code == 401


def test_a_change_another_process_announced_is_honoured_here(member, api_as):
    """Another web worker (or machine) revoked the token: its row is gone and the shared counter
    moved. This process only sees the counter, and must not answer from its memory."""
    api = api_as(member)
    assert api.get(f"{V}/servers").status_code == 200
    with connection.cursor() as cursor:  # a delete this process's signals never see
        cursor.execute("DELETE FROM identity_token WHERE token_hash = %s",
                       [tokens._hash(member.token)])

    cache.incr(token_cache.GENERATION_KEY)  # what the other process's signal did

    assert api.get(f"{V}/servers").status_code == 401


class _Away:
    """The shared cache, unreachable."""

    def __getattr__(self, name):
        def away(*args, **kwargs):
            raise ConnectionError("cache is away")

        return away


def test_without_the_shared_counter_every_request_reads_the_database(member, api_as,
                                                                     monkeypatch):
    api = api_as(member)
    monkeypatch.setattr(generation, "cache", _Away())  # the counter lives there
    assert _identity_queries(api)[0] == 200
    status, again = _identity_queries(api)
    assert status == 200
    assert len(again) == 2  # nothing remembered while the counter cannot be read


@pytest.mark.django_db(transaction=True)  # the refused change is rolled back for real
def test_a_change_that_cannot_be_announced_is_refused_and_not_made(admin, member, api_as,
                                                                   monkeypatch, tiny, image,
                                                                   sent):
    api = api_as(member)
    assert api.get(f"{V}/servers").status_code == 200
    role = Role.objects.get(name="member")

    monkeypatch.setattr(generation, "cache", _Away())  # the counter lives there
    removed = api_as(admin).delete(
        f"/identity/v3/projects/{member.project.id}/users/{member.user.id}/roles/{role.id}")

    assert removed.status_code == 503, removed.content
    assert RoleAssignment.objects.filter(user=member.user, role=role).exists()
    monkeypatch.undo()
    assert boot(api, image).status_code == 202  # still a member


def test_a_remembered_token_still_expires_on_time(member, api_as, settings):
    settings.KUMO_TOKEN_CACHE_SECONDS = 300
    issued = tokens.issue(member.user, member.project, ["password"], ttl=1)
    member.token = issued.token
    api = api_as(member)
    assert api.get(f"{V}/servers").status_code == 200

    time.sleep(1.1)

    assert api.get(f"{V}/servers").status_code == 401


@pytest.mark.parametrize("seconds", [0])
def test_the_cache_can_be_turned_off(member, api_as, settings, seconds):
    settings.KUMO_TOKEN_CACHE_SECONDS = seconds
    api = api_as(member)
    _identity_queries(api)
    assert len(_identity_queries(api)[1]) == 2


def test_purging_expired_tokens_leaves_remembered_ones_alone(member, api_as):
    expired = tokens.issue(member.user, member.project, ["password"], ttl=-1)
    api = api_as(member)
    assert api.get(f"{V}/servers").status_code == 200
    generation = token_cache.current_generation()

    assert tokens.purge_expired() == 1
    assert tokens.lookup(expired.token) is None

    assert token_cache.current_generation() == generation
    status, again = _identity_queries(api)
    assert (status, again) == (200, [])
