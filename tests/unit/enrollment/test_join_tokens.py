"""Join tokens: random, shown once, stored hashed, bound to a host, expiring, spent once."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.utils import timezone

from cloud import errors
from cloud.enrollment import join_tokens
from cloud.enrollment.models import JoinToken
from compute_agent import join

pytestmark = pytest.mark.django_db


def test_a_token_is_random_shown_once_and_stored_only_as_its_hash():
    first = join_tokens.issue("compute-7")
    second = join_tokens.issue("compute-7")
    assert first.token != second.token and len(first.token) >= 40
    row = JoinToken.objects.get(pk=first.record.pk)
    assert row.token_hash == hashlib.sha256(first.token.encode()).hexdigest()
    assert first.token not in {getattr(row, f.attname) for f in JoinToken._meta.fields}


def test_a_token_is_one_command_line_argument_whatever_its_bytes():
    # a token starting with "-" was taken for an option by `python -m compute_agent join`
    for _ in range(200):
        token = join_tokens.issue("compute-7").token
        assert join.parse_args(["http://controller:8000", token]).token == token


def test_a_token_expires_after_its_ttl_or_the_default(settings):
    settings.KUMO_JOIN_TOKEN_TTL = 600
    now = timezone.now()
    default = join_tokens.issue("compute-7").record
    short = join_tokens.issue("compute-7", ttl=120).record
    assert abs((default.expires_at - now).total_seconds() - 600) < 5
    assert abs((short.expires_at - now).total_seconds() - 120) < 5


def test_a_token_is_spent_once():
    issued = join_tokens.issue("compute-7")
    assert join_tokens.take(issued.token).host == "compute-7"
    with pytest.raises(errors.Unauthorized, match="already used"):
        join_tokens.take(issued.token)


def test_an_expired_token_is_refused_saying_when():
    issued = join_tokens.issue("compute-7")
    JoinToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(errors.Unauthorized, match="expired at"):
        join_tokens.take(issued.token)
    assert JoinToken.objects.get().used_at is None


def test_an_unknown_token_is_refused():
    join_tokens.issue("compute-7")
    with pytest.raises(errors.Unauthorized, match="not valid"):
        join_tokens.take("not-a-token")


@pytest.mark.parametrize("host", ["", "-lead", "a b", "compute.*", "x" * 64, "é", "a/b"])
def test_host_names_that_cannot_be_queue_names_are_refused(host):
    with pytest.raises(errors.BadRequest, match="Invalid host name"):
        join_tokens.issue(host)
    assert not JoinToken.objects.exists()


@pytest.mark.parametrize("ttl", [0, 59, 7 * 24 * 3600 + 1, -5])
def test_ttls_out_of_range_are_refused(ttl):
    with pytest.raises(errors.BadRequest, match="Invalid ttl"):
        join_tokens.issue("compute-7", ttl=ttl)


def test_withdraw_removes_only_the_hosts_unspent_tokens():
    spent = join_tokens.issue("compute-7")
    join_tokens.take(spent.token)
    join_tokens.issue("compute-7")
    join_tokens.issue("compute-8")
    assert join_tokens.withdraw("compute-7") == 1
    assert sorted(JoinToken.objects.values_list("host", flat=True)) == ["compute-7", "compute-8"]
