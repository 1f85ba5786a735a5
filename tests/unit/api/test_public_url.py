"""A forged Host header is never reflected once KUMO_PUBLIC_URL is set (issue 11, point 7): links,
the service catalog and console URLs come from the public URL, and a Host that is none of Kumo's
own is refused outright. Unset, a local first run keeps answering links from the request's Host."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.factories import make_server
from tests.unit.consoles.fakes import console_host

PUBLIC = "https://cloud.example.com"
C = "/compute/v2.1"
PASSWORD_BODY = ('{"auth": {"identity": {"methods": ["password"], "password": {"user": '
                 '{"name": "bob", "domain": {"id": "default"}, "password": "correct-horse-battery"}}}, '
                 '"scope": {"project": {"name": "alpha", "domain": {"id": "default"}}}}}')


@pytest.fixture
def public(settings):
    settings.KUMO_PUBLIC_URL = PUBLIC
    settings.ALLOWED_HOSTS = ["cloud.example.com", "10.0.0.2"]
    return settings


@pytest.mark.parametrize("path, family_key", [
    ("/compute/v2.1", "badRequest"), ("/identity/v3", "error"), ("/network/v2.0", "NeutronError"),
])
def test_a_forged_host_is_refused_in_the_familys_shape(public, path, family_key):
    response = Client().get(path, HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert family_key in response.json()
    assert b"evil.example" not in response.content


def test_links_and_the_catalog_name_the_public_url_whatever_the_host(public, member):
    # Even where every Host is let in (DJANGO_ALLOWED_HOSTS=*), the public URL decides.
    public.ALLOWED_HOSTS = ["*"]
    client = Client()
    version = client.get(f"{C}/", HTTP_HOST="evil.example").json()["version"]
    assert version["links"][0]["href"] == f"{PUBLIC}/compute/v2.1/"
    token = client.post("/identity/v3/auth/tokens", PASSWORD_BODY, content_type="application/json",
                        HTTP_HOST="evil.example")
    assert token.status_code == 201, token.content
    urls = [e["url"] for s in token.json()["token"]["catalog"] for e in s["endpoints"]]
    assert urls and all(url.startswith(PUBLIC + "/") for url in urls)
    listed = client.get(f"{C}/flavors", HTTP_HOST="evil.example", **member.headers())
    assert b"evil.example" not in listed.content


def test_console_urls_name_the_public_url_whatever_the_host(public, member):
    public.ALLOWED_HOSTS = ["*"]
    console_host("compute1")
    server = make_server(member, console_port=5900)
    response = Client().post(
        f"{C}/servers/{server.uuid}/remote-consoles",
        '{"remote_console": {"protocol": "vnc", "type": "novnc"}}',
        content_type="application/json", HTTP_HOST="evil.example", **member.headers("2.6"),
    )
    assert response.status_code == 200, response.content
    assert response.json()["remote_console"]["url"].startswith(f"{PUBLIC}/console/?token=")


def test_without_a_public_url_a_first_run_builds_links_from_the_host(db):
    version = Client().get(f"{C}/", HTTP_HOST="laptop.local:8000").json()["version"]
    assert version["links"][0]["href"] == "http://laptop.local:8000/compute/v2.1/"
