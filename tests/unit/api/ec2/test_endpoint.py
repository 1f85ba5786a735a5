"""The EC2 endpoint itself, through boto3: signatures (good, wrong secret, unknown key, outside
the 15-minute window, replayed), EC2's error shape, and the catalog entry."""

from __future__ import annotations

import datetime as dt

import pytest
from botocore.exceptions import ClientError
from django.test import Client

from .conftest import client_for, ec2_pair

pytestmark = pytest.mark.django_db


def code_of(excinfo) -> str:
    return excinfo.value.response["Error"]["Code"]


def test_a_signed_request_is_answered_in_ec2s_shape(ec2_as, member):
    answer = ec2_as(member).describe_regions()
    assert [r["RegionName"] for r in answer["Regions"]] == ["RegionOne"]
    assert answer["Regions"][0]["Endpoint"] == "http://testserver/ec2"


def test_a_wrong_secret_is_an_auth_failure(member):
    access, secret = ec2_pair(member)
    with pytest.raises(ClientError) as refused:
        client_for(access, secret[:-1] + ("0" if secret[-1] != "0" else "1")).describe_regions()
    assert code_of(refused) == "AuthFailure"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 401


def test_an_unknown_access_key_is_an_auth_failure(member):
    _, secret = ec2_pair(member)
    with pytest.raises(ClientError) as refused:
        client_for("0" * 32, secret).describe_regions()
    assert code_of(refused) == "AuthFailure"


@pytest.mark.parametrize("skew", [16, -16])
def test_a_request_signed_outside_the_window_has_expired(ec2_as, member, monkeypatch, skew):
    from cloud.api.ec2 import signature

    client = ec2_as(member)
    client.describe_regions()  # inside the window: answered
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=skew)
    monkeypatch.setattr(signature, "_now", lambda: later)  # the server's clock moves 16 min
    with pytest.raises(ClientError) as refused:
        client.describe_regions()
    assert code_of(refused) == "RequestExpired"


def _bytes(body: object) -> bytes:
    return body if isinstance(body, bytes) else str(body).encode()


def _captured(client, call) -> dict:
    """The signed request the client sends for `call`, as Django test-client arguments."""
    seen: dict = {}

    def keep(request, **_: object) -> None:
        seen["request"] = request
    client.meta.events.register_first("before-send", keep)
    call(client)
    request = seen["request"]
    headers = {f"HTTP_{k.upper().replace('-', '_')}": (v.decode() if isinstance(v, bytes) else v)
               for k, v in request.headers.items() if k.lower() not in ("content-type",
                                                                       "content-length")}
    headers.setdefault("HTTP_HOST", "testserver")
    return {"body": request.body, "headers": headers}


def test_a_replayed_change_is_refused_and_a_replayed_read_is_not(ec2_as, member):
    client = ec2_as(member)
    change = _captured(client, lambda c: c.create_key_pair(KeyName="once"))
    replay = Client().post("/ec2", change["body"],
                           content_type="application/x-www-form-urlencoded; charset=utf-8",
                           **change["headers"])
    assert replay.status_code == 401
    assert b"<Code>AuthFailure</Code>" in replay.content
    assert b"already been used" in replay.content

    read = _captured(client, lambda c: c.describe_regions())
    again = Client().post("/ec2", read["body"],
                          content_type="application/x-www-form-urlencoded; charset=utf-8",
                          **read["headers"])
    assert again.status_code == 200, again.content


def test_an_unsigned_request_and_an_unknown_action_answer_ec2_errors(ec2_as, member):
    unsigned = Client().post("/ec2", "Action=DescribeRegions&Version=2016-11-15",
                             content_type="application/x-www-form-urlencoded")
    assert unsigned.status_code == 401
    assert b"<Code>AuthFailure</Code>" in unsigned.content
    signed = _captured(ec2_as(member), lambda c: c.describe_regions())
    unknown = Client().post("/ec2", _bytes(signed["body"]).replace(b"DescribeRegions", b"LaunchRocket"),
                            content_type="application/x-www-form-urlencoded; charset=utf-8",
                            **signed["headers"])
    # The action is part of what was signed: changing it breaks the signature first.
    assert unknown.status_code == 401


def test_an_action_kumo_does_not_serve_is_an_invalid_action(ec2_as, member):
    client = ec2_as(member)
    with pytest.raises(ClientError) as refused:
        client.describe_spot_price_history()
    assert code_of(refused) == "InvalidAction"


def test_the_catalog_names_the_ec2_endpoint(member):
    body = Client().get("/identity/v3/auth/catalog", HTTP_X_AUTH_TOKEN=member.token).json()
    ec2 = [s for s in body["catalog"] if s["type"] == "ec2"]
    assert ec2 and ec2[0]["endpoints"][0]["url"].endswith("/ec2")
