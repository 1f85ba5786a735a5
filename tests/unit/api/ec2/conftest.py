"""boto3 as published, talking to Kumo's EC2 endpoint in this process: a `before-send` hook hands
each request botocore built and signed to Django's test client and gives botocore the answer, so
serialising, signing, parsing, paginators and waiters are boto3's own, with no server to start."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from django.test import Client

ENDPOINT = "http://testserver/ec2"


class _Raw:
    def __init__(self, content: bytes) -> None:
        self.content = content

    def stream(self, **_: object) -> Iterator[bytes]:
        yield self.content


def send_through_django(request, **_: object) -> AWSResponse:
    url = urlsplit(request.url)
    headers = {}
    for name, value in request.headers.items():
        text = value.decode() if isinstance(value, bytes) else str(value)
        key = name.upper().replace("-", "_")
        headers[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}"] = text
    body = request.body or b""
    if hasattr(body, "read"):
        body = body.read()
    if isinstance(body, str):
        body = body.encode()
    headers.pop("CONTENT_LENGTH", None)
    headers.setdefault("HTTP_HOST", url.netloc)  # botocore signs the URL's host; http.client sends it
    content_type = headers.pop("CONTENT_TYPE", "application/x-www-form-urlencoded")
    response = Client().generic(request.method, url.path, body, content_type=content_type,
                                QUERY_STRING=url.query, **headers)
    return AWSResponse(request.url, response.status_code, dict(response.items()),
                       _Raw(response.content))


def ec2_pair(persona) -> tuple[str, str]:
    """A new EC2 access key and secret of the persona on its project, made as `openstack ec2
    credentials create` makes one."""
    response = Client().post(
        f"/identity/v3/users/{persona.user.id}/credentials/OS-EC2",
        json.dumps({"tenant_id": persona.project.id}), content_type="application/json",
        HTTP_X_AUTH_TOKEN=persona.token)
    assert response.status_code == 201, response.content
    made = response.json()["credential"]
    return made["access"], made["secret"]


def client_for(access: str, secret: str, **config: object):
    client = boto3.client(
        "ec2", endpoint_url=ENDPOINT, region_name="RegionOne", aws_access_key_id=access,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 1}, **config))  # type: ignore[arg-type]
    client.meta.events.register("before-send", send_through_django)
    return client


@pytest.fixture
def ec2_as() -> Callable:
    """ec2_as(persona) is a boto3 EC2 client signed with a fresh credential of the persona."""
    def factory(persona, **config: object):
        return client_for(*ec2_pair(persona), **config)
    return factory
