"""Joining and revoking: a host's broker user is made when it joins, replaced when it joins again,
and deleted when it is revoked, with its unspent tokens."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from cloud import errors
from cloud.enrollment import host_credentials, join_tokens
from cloud.enrollment.models import HostCredential, JoinToken

pytestmark = pytest.mark.django_db


def _join(host="compute-7"):
    return host_credentials.join(join_tokens.issue(host).token)


def test_joining_again_replaces_the_user_and_the_secret(fake_broker):
    first = _join()
    second = _join()
    assert first.host_secret != second.host_secret
    assert fake_broker.calls == [("create", "compute-7"), ("create", "compute-7")]
    assert fake_broker.users["kumo-host-compute-7"][0] in second.broker_url
    assert HostCredential.objects.count() == 1


def test_the_secret_is_not_stored(fake_broker):
    joined = _join()
    row = HostCredential.objects.get()
    assert joined.host_secret not in {str(getattr(row, f.attname)) for f in row._meta.fields}
    assert host_credentials.secret_of(row) == joined.host_secret


def test_a_revoked_host_loses_its_user_its_credential_and_its_unspent_tokens(fake_broker):
    _join()
    join_tokens.issue("compute-7")
    assert host_credentials.revoke("compute-7") == host_credentials.Revoked(True, 1)
    assert fake_broker.users == {}
    assert not HostCredential.objects.exists()
    assert not JoinToken.objects.filter(used_at__isnull=True).exists()


def test_a_token_issued_before_a_revocation_no_longer_joins(fake_broker):
    pending = join_tokens.issue("compute-7")
    _join()
    host_credentials.revoke("compute-7")
    with pytest.raises(errors.Unauthorized, match="not valid"):
        host_credentials.join(pending.token)


def test_when_the_broker_cannot_delete_the_user_the_credential_stays(fake_broker):
    from cloud.enrollment.broker_users import BrokerUserError

    _join()
    fake_broker.fail_with = BrokerUserError("rabbitmqctl delete_user failed (69): nodedown")
    with pytest.raises(errors.ServiceUnavailable, match="nodedown"):
        host_credentials.revoke("compute-7")
    assert HostCredential.objects.exists()


def test_manage_host_token_prints_the_token_alone_on_stdout(fake_broker, settings):
    settings.KUMO_INTERNAL_URL = "http://controller:8000"
    out, err = io.StringIO(), io.StringIO()
    call_command("host-token", "--host", "compute-7", "--ttl", "300", stdout=out, stderr=err)
    token = out.getvalue().strip()
    assert f"python -m compute_agent join http://controller:8000 {token}" in err.getvalue()
    assert join_tokens.take(token).host == "compute-7"


def test_manage_host_token_refuses_a_bad_name():
    with pytest.raises(CommandError, match="Invalid host name"):
        call_command("host-token", "--host", "compute 7", stdout=io.StringIO())


def test_manage_host_revoke(fake_broker):
    _join()
    out = io.StringIO()
    call_command("host-revoke", "compute-7", stdout=out)
    assert "revoked" in out.getvalue() and not fake_broker.users
    with pytest.raises(CommandError, match="no credential and no unused join token"):
        call_command("host-revoke", "compute-7", stdout=io.StringIO())


def test_revoking_a_host_that_never_joined_withdraws_its_tokens(fake_broker):
    pending = join_tokens.issue("compute-7")
    join_tokens.issue("compute-8")
    out = io.StringIO()
    call_command("host-revoke", "compute-7", stdout=out)
    assert out.getvalue().strip() == "withdrew 1 unused join token for host compute-7"
    assert fake_broker.calls == []
    with pytest.raises(errors.Unauthorized, match="not valid"):
        host_credentials.join(pending.token)
    assert JoinToken.objects.get().host == "compute-8"
