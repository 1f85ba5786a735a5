"""EC2 signatures checked over real HTTP through gunicorn/uvicorn, with the Host header the client
really sent (issue 18): a wrong secret is AuthFailure, a request signed 16 minutes ago is
RequestExpired, a captured signed change sent again is refused (and changes nothing), a captured
read may be sent again, and a signed request sent to another host name does not verify."""

from __future__ import annotations

import datetime as dt

import pytest
import requests
from botocore import auth as botocore_auth
from botocore.exceptions import ClientError

from tests.compat import ec2
from tests.compat.ec2 import FAST, ec2_id
from tests.stack import qcow2_bytes


@pytest.fixture(scope="module")
def pair(stack) -> tuple[str, str]:
    return ec2.ec2_credential(stack.openstack_env())


def _refusal(refused: pytest.ExceptionInfo) -> tuple[int, str, str]:
    response = refused.value.response
    return (response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"],
            response["Error"]["Message"])


def _capture(client) -> dict:
    """Keeps the last request the client signed and sent (botocore's own bytes and headers)."""
    seen: dict = {}

    def keep(request, **_: object) -> None:
        seen["url"], seen["body"] = request.url, request.body
        seen["headers"] = {k: (v.decode() if isinstance(v, bytes) else v)
                           for k, v in request.headers.items()}
    client.meta.events.register("before-send", keep)
    return seen


def _send_again(seen: dict, url: str | None = None) -> requests.Response:
    return requests.post(url or seen["url"], data=seen["body"], headers=seen["headers"],
                         timeout=60)


def test_a_wrong_secret_is_an_auth_failure_over_http(stack, pair):
    access, secret = pair
    wrong = secret[:-1] + ("0" if secret[-1] != "0" else "1")
    with pytest.raises(ClientError) as refused:
        ec2.client(stack.url, access, wrong).describe_regions()
    status, code, message = _refusal(refused)
    assert (status, code) == (401, "AuthFailure")
    assert secret not in message and wrong not in message
    with pytest.raises(ClientError) as refused:
        ec2.client(stack.url, "AKIA" + access[4:][::-1], secret).describe_regions()
    assert _refusal(refused)[:2] == (401, "AuthFailure")
    assert ec2.client(stack.url, access, secret).describe_regions()["Regions"]


def test_a_request_signed_sixteen_minutes_ago_has_expired(stack, pair, monkeypatch):
    client = ec2.client(stack.url, *pair)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    # botocore stamps X-Amz-Date from this clock: the client's clock is 16 minutes behind.
    monkeypatch.setattr(botocore_auth, "get_current_datetime",
                        lambda *_, **__: now - dt.timedelta(minutes=16))
    with pytest.raises(ClientError) as refused:
        client.describe_regions()
    status, code, _ = _refusal(refused)
    assert code == "RequestExpired" and 400 <= status < 500
    monkeypatch.setattr(botocore_auth, "get_current_datetime",
                        lambda *_, **__: now - dt.timedelta(minutes=14))
    assert client.describe_regions()["Regions"]  # 14 minutes: inside the window


def test_a_captured_run_instances_replayed_boots_nothing_more(stack, pair):
    api = stack.client("2.60")
    image_id = api.upload_image("ec2-replay", qcow2_bytes())
    client = ec2.client(stack.url, *pair)
    seen = _capture(client)
    ran = client.run_instances(ImageId=ec2_id("ami", image_id), InstanceType="m1.tiny",
                               MinCount=1, MaxCount=1,
                               TagSpecifications=[{"ResourceType": "instance", "Tags": [
                                   {"Key": "replay", "Value": "once"}]}])
    instance_id = ran["Instances"][0]["InstanceId"]
    signed_run = dict(seen)  # what the client sent; its next calls overwrite `seen`
    assert "RunInstances" in str(signed_run["body"]) and signed_run["headers"]["Authorization"]
    client.get_waiter("instance_running").wait(InstanceIds=[instance_id], WaiterConfig=FAST)

    # boto3 put a ClientToken in it, which makes RunInstances idempotent: sent again (as a retry
    # re-signed within the same second would be), it answers the first reservation.
    assert "ClientToken=" in str(signed_run["body"])
    replay = _send_again(signed_run)
    assert replay.status_code == 200 and instance_id in replay.text
    tagged = client.describe_instances(Filters=[{"Name": "tag:replay", "Values": ["once"]}])
    assert [i["InstanceId"] for r in tagged["Reservations"] for i in r["Instances"]] == [
        instance_id]

    # A read may be sent again as it is (a client polling twice in a second does).
    client.describe_instances(InstanceIds=[instance_id])
    read = _send_again(seen)
    assert read.status_code == 200 and instance_id in read.text

    # The same signed read sent to another name of the same server: the Host header is signed.
    other = seen["url"].replace("127.0.0.1", "localhost")
    moved = _send_again(seen, other)
    assert moved.status_code == 401 and "<Code>AuthFailure</Code>" in moved.text

    client.terminate_instances(InstanceIds=[instance_id])
    client.get_waiter("instance_terminated").wait(InstanceIds=[instance_id], WaiterConfig=FAST)
    api.request("DELETE", f"/image/v2/images/{image_id}").raise_for_status()


def test_a_captured_run_instances_without_a_client_token_is_accepted_once(stack, pair):
    api = stack.client("2.60")
    image_id = api.upload_image("ec2-replay-bare", qcow2_bytes())
    client = ec2.client(stack.url, *pair)
    # A tool that sends no ClientToken (botocore fills one in itself, for every operation, after
    # any handler of RunInstances' own: taken out of the serialized body here, before signing).
    def no_token(params: dict, **_: object) -> None:  # a value returned would be the answer
        params["body"].pop("ClientToken", None)
    client.meta.events.register("before-call.ec2.RunInstances", no_token)
    seen = _capture(client)
    ran = client.run_instances(ImageId=ec2_id("ami", image_id), InstanceType="m1.tiny",
                               MinCount=1, MaxCount=1,
                               TagSpecifications=[{"ResourceType": "instance", "Tags": [
                                   {"Key": "replay", "Value": "bare"}]}])
    instance_id = ran["Instances"][0]["InstanceId"]
    signed_run = dict(seen)
    assert "RunInstances" in str(signed_run["body"])
    assert "ClientToken" not in str(signed_run["body"])

    replay = _send_again(signed_run)
    assert replay.status_code == 401
    assert "<Code>AuthFailure</Code>" in replay.text and "already been used" in replay.text
    tagged = client.describe_instances(Filters=[{"Name": "tag:replay", "Values": ["bare"]}])
    assert [i["InstanceId"] for r in tagged["Reservations"] for i in r["Instances"]] == [
        instance_id]

    client.get_waiter("instance_running").wait(InstanceIds=[instance_id], WaiterConfig=FAST)
    client.terminate_instances(InstanceIds=[instance_id])
    client.get_waiter("instance_terminated").wait(InstanceIds=[instance_id], WaiterConfig=FAST)
    api.request("DELETE", f"/image/v2/images/{image_id}").raise_for_status()


def test_a_replayed_key_pair_creation_is_refused_over_http(stack, pair):
    client = ec2.client(stack.url, *pair)
    seen = _capture(client)
    client.create_key_pair(KeyName="replayed-key")
    try:
        replay = _send_again(seen)
        assert replay.status_code == 401 and "already been used" in replay.text
        names = [k["KeyName"] for k in client.describe_key_pairs()["KeyPairs"]]
        assert names.count("replayed-key") == 1
    finally:
        client.delete_key_pair(KeyName="replayed-key")
