"""/os-host-tokens and /os-host-joins: an admin issues a join token, a machine trades it (with no
Keystone token) for its broker credential, once."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.utils import timezone

from cloud.enrollment.broker_users import BrokerUserError
from cloud.enrollment.models import HostCredential, JoinToken

pytestmark = pytest.mark.django_db

V = "/compute/v2.1"


def _issue(api, host="compute-7", **fields):
    return api.post(f"{V}/os-host-tokens", {"host_token": {"host": host, **fields}})


def _join(api, token, **fields):
    return api.post(f"{V}/os-host-joins", {"join": {"token": token, **fields}})


def test_an_admin_gets_a_token_and_the_command_to_run_once(admin, api_as, settings):
    settings.KUMO_INTERNAL_URL = "http://controller:8000"
    answer = _issue(api_as(admin), ttl=600)
    assert answer.status_code == 201, answer.content
    body = answer.json()["host_token"]
    assert body["host"] == "compute-7" and len(body["token"]) >= 40
    assert body["join_command"] == (
        f"python -m compute_agent join http://controller:8000 {body['token']}")
    assert answer["Cache-Control"] == "no-store"
    assert JoinToken.objects.get().issued_by == str(admin.user.id)


@pytest.mark.parametrize("fields", [{"ttl": 10}, {"ttl": "600"}, {"nope": 1}])
def test_a_bad_issue_is_a_400(admin, api_as, fields):
    answer = _issue(api_as(admin), **fields)
    assert answer.status_code == 400
    assert "badRequest" in answer.json()
    assert not JoinToken.objects.exists()


def test_a_host_name_that_cannot_be_a_queue_is_a_400(admin, api_as):
    answer = _issue(api_as(admin), host="compute 7")
    assert answer.status_code == 400
    assert "Invalid host name" in answer.json()["badRequest"]["message"]


def test_a_member_gets_no_token(member, api_as):
    assert _issue(api_as(member)).status_code == 403
    assert not JoinToken.objects.exists()


def test_a_machine_joins_with_the_token_alone_and_gets_its_own_credential(
        admin, api_as, fake_broker, settings):
    settings.CELERY_BROKER_URL = "redis://:cp-secret@10.0.0.5:6379/2"
    token = _issue(api_as(admin)).json()["host_token"]["token"]
    answer = _join(api_as(None), token)
    assert answer.status_code == 201, answer.content
    joined = answer.json()["join"]
    assert joined["host"] == "compute-7" and joined["queue"] == "compute.compute-7"
    url = urlsplit(joined["broker_url"])
    # the host's own user and password, never the control plane's
    assert (url.username, url.hostname, url.port, url.path) == (
        "kumo-host-compute-7", "10.0.0.5", 6379, "/2")
    assert url.password == fake_broker.users["kumo-host-compute-7"][0] != "cp-secret"
    assert len(joined["host_secret"]) == 64
    assert answer["Cache-Control"] == "no-store"
    assert HostCredential.objects.get().broker_user == "kumo-host-compute-7"


def test_a_token_joins_once(admin, api_as):
    token = _issue(api_as(admin)).json()["host_token"]["token"]
    assert _join(api_as(None), token).status_code == 201
    again = _join(api_as(None), token)
    assert again.status_code == 401
    assert "already used" in again.json()["unauthorized"]["message"]


def test_an_expired_token_does_not_join(admin, api_as, fake_broker):
    token = _issue(api_as(admin)).json()["host_token"]["token"]
    JoinToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    answer = _join(api_as(None), token)
    assert answer.status_code == 401
    assert "expired" in answer.json()["unauthorized"]["message"]
    assert not fake_broker.users and not HostCredential.objects.exists()


def test_an_unknown_token_does_not_join(api_as, fake_broker):
    answer = _join(api_as(None), "x" * 43)
    assert answer.status_code == 401
    assert not fake_broker.calls


def test_a_token_joins_only_as_its_own_host(admin, api_as, fake_broker):
    token = _issue(api_as(admin)).json()["host_token"]["token"]
    answer = _join(api_as(None), token, host="compute-8")
    assert answer.status_code == 400
    assert "not 'compute-8'" in answer.json()["badRequest"]["message"]
    assert not fake_broker.users
    assert _join(api_as(None), token, host="compute-7").status_code == 201


def test_when_the_broker_refuses_the_user_the_token_stays_unspent(admin, api_as, fake_broker):
    token = _issue(api_as(admin)).json()["host_token"]["token"]
    fake_broker.fail_with = BrokerUserError("rabbitmqctl add_user failed (69): nodedown")
    answer = _join(api_as(None), token)
    assert answer.status_code == 503
    assert "nodedown" in answer.json()["computeFault"]["message"]
    assert JoinToken.objects.get().used_at is None
    assert _join(api_as(None), token).status_code == 201
