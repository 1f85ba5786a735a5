"""API access (issue 18): the catalog's endpoints, the openrc and clouds.yaml downloads, and the
signed-in user's own EC2 credentials, whose keys are checked by signing real boto3 requests to
/ec2 (tests/unit/api/ec2/conftest.py sends them through Django in this process)."""

from __future__ import annotations

import json
import logging
import re
import shlex
import subprocess

import boto3
import pytest
import yaml
from botocore.config import Config
from botocore.exceptions import ClientError
from django.test import Client

from cloud.dashboard.api_access import Ec2Settings, render_ec2rc, render_openrc
from cloud.identity import credentials
from cloud.identity.context import RequestContext
from tests.personas import PASSWORD, make_persona
from tests.unit.api.ec2.conftest import client_for, ec2_pair, send_through_django

from .conftest import signed_in

pytestmark = pytest.mark.django_db


def _access_keys(page: str) -> list[str]:
    return re.findall(r'<tr data-access="([0-9a-f]+)">', page)


def _exports(text: str) -> dict[str, str]:
    found = {}
    for line in text.splitlines():
        if line.startswith("export "):
            name, _, value = line[len("export "):].partition("=")
            found[name] = shlex.split(value)[0] if value else ""
    return found


def _create(client: Client) -> str:
    """Create a credential through the page; its access key (the one the page gained)."""
    before = set(_access_keys(client.get("/api-access/").content.decode()))
    response = client.post("/api-access/ec2/create")
    assert response.status_code == 302 and response["Location"] == "/api-access/"
    (access,) = set(_access_keys(client.get("/api-access/").content.decode())) - before
    return access


def _reveal(client: Client, access: str) -> str:
    response = client.post("/api-access/ec2/reveal", {"access": access})
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    row = re.search(rf'<tr data-access="{access}">.*?<span class="secret">([0-9a-f]+)</span>',
                    response.content.decode(), re.DOTALL)
    assert row, "the secret is shown in its credential's row"
    return row.group(1)


def _describe(access: str, secret: str) -> dict:
    return client_for(access, secret).describe_instances()


def test_the_page_lists_the_catalog_endpoints_with_ec2(member):
    response = signed_in(member).get("/api-access/")
    assert response.status_code == 200
    page = response.content.decode()
    rows = dict(re.findall(
        r'<tr data-service-type="([^"]+)">.*?<td class="mono small">([^<]+)</td>', page, re.DOTALL))
    assert rows["ec2"] == "http://testserver/ec2"
    assert rows["identity"] == "http://testserver/identity"
    # Endpoint templates are filled in with the selected project, as in a token's catalog.
    assert rows["block-storage"] == f"http://testserver/volume/v3/{member.project.pk}"
    assert 'href="/api-access/"' in page  # the left menu's entry
    assert "aws --endpoint-url http://testserver/ec2 --region RegionOne ec2 describe-instances" \
        in page
    assert 'endpoint_url="http://testserver/ec2"' in page


def test_a_credential_made_on_the_page_signs_ec2_requests(member):
    client = signed_in(member)
    access = _create(client)
    page = client.get("/api-access/").content.decode()
    (pair,) = credentials.list_ec2(_ctx(member), member.user.pk)
    assert pair.access == access and pair.project_id == member.project.pk
    assert pair.secret not in page, "the secret is shown only when asked for"
    assert pair.secret not in repr(pair), "a pair in a log line or traceback keeps it"
    secret = _reveal(client, access)
    assert secret == pair.secret
    assert _describe(access, secret)["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_the_ec2rc_download_configures_boto3_on_its_own(member, monkeypatch):
    client = signed_in(member)
    assert client.get("/api-access/ec2rc.sh").status_code == 405, "it makes a key: POST only"
    response = client.post("/api-access/ec2rc.sh")
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    assert response["Content-Disposition"] == 'attachment; filename="ec2rc.sh"'
    exported = _exports(response.content.decode())
    assert exported["EC2_URL"] == exported["AWS_ENDPOINT_URL_EC2"] == "http://testserver/ec2"
    assert exported["EC2_ACCESS_KEY"] == exported["AWS_ACCESS_KEY_ID"]
    assert exported["EC2_SECRET_KEY"] == exported["AWS_SECRET_ACCESS_KEY"]
    assert exported["AWS_DEFAULT_REGION"] == "RegionOne"
    # boto3 as a user runs it after `source ec2rc.sh`: nothing but the environment.
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in exported.items():
        monkeypatch.setenv(name, value)
    ec2 = boto3.Session().client("ec2", config=Config(retries={"max_attempts": 1}))
    ec2.meta.events.register("before-send", send_through_django)
    assert ec2.meta.endpoint_url == "http://testserver/ec2"
    assert ec2.describe_instances()["ResponseMetadata"]["HTTPStatusCode"] == 200
    # Downloading again reuses the project's credential, as Horizon's button does.
    again = _exports(client.post("/api-access/ec2rc.sh").content.decode())
    assert again["EC2_ACCESS_KEY"] == exported["EC2_ACCESS_KEY"]
    assert len(credentials.list_ec2(_ctx(member), member.user.pk)) == 1
    # And the row's own button gives that credential's file.
    named = client.post("/api-access/ec2rc.sh", {"access": exported["EC2_ACCESS_KEY"]})
    assert _exports(named.content.decode())["EC2_SECRET_KEY"] == exported["EC2_SECRET_KEY"]


def test_the_secret_stays_out_of_logs_urls_messages_and_the_session(member, caplog):
    caplog.set_level(logging.DEBUG)
    client = signed_in(member)
    made = client.post("/api-access/ec2/create", follow=True)
    (access,) = _access_keys(made.content.decode())
    secret = _reveal(client, access)
    assert secret not in made.content.decode(), "shown only when asked for, not on creation"
    downloaded = client.post("/api-access/ec2rc.sh", {"access": access})
    assert secret in downloaded.content.decode()
    deleted = client.post(f"/api-access/ec2/{access}/delete", follow=True)
    assert "deleted" in deleted.content.decode() and secret not in deleted.content.decode()
    for response in (made, downloaded, deleted):
        urls = [response.request["PATH_INFO"], *(url for url, _ in response.redirect_chain)] \
            if hasattr(response, "redirect_chain") else [response.request["PATH_INFO"]]
        assert all(secret not in url for url in urls)
    assert secret not in str(dict(client.session.items()))
    assert secret not in caplog.text


def test_deleting_a_credential_makes_its_key_fail(member):
    client = signed_in(member)
    access = _create(client)
    secret = _reveal(client, access)
    _describe(access, secret)
    confirm = client.get(f"/api-access/ec2/{access}/delete")
    assert confirm.status_code == 200 and "Delete EC2 credential" in confirm.content.decode()
    assert client.post(f"/api-access/ec2/{access}/delete").status_code == 302
    assert access not in _access_keys(client.get("/api-access/").content.decode())
    with pytest.raises(ClientError) as refused:
        _describe(access, secret)
    assert refused.value.response["Error"]["Code"] == "AuthFailure"


def test_another_users_credentials_are_never_listed_or_reachable(admin, member, other):
    theirs = [ec2_pair(admin)[0], ec2_pair(other)[0]]
    member_client = signed_in(member)
    own = _create(member_client)
    assert _access_keys(member_client.get("/api-access/").content.decode()) == [own]
    # Not even an admin sees anyone's but their own here.
    assert own not in _access_keys(signed_in(admin).get("/api-access/").content.decode())
    for access in theirs:
        assert member_client.post("/api-access/ec2/reveal", {"access": access}).status_code == 404
        assert member_client.post("/api-access/ec2rc.sh", {"access": access}).status_code == 404
        assert member_client.post(f"/api-access/ec2/{access}/delete").status_code == 404
    assert credentials.ec2_secret(theirs[0]) is not None
    assert credentials.ec2_secret(theirs[1]) is not None


def test_a_credential_on_another_project_of_the_user_is_listed_there_not_here(member):
    elsewhere = make_persona(member.user.name, "beta", ["member"])
    access, _ = ec2_pair(elsewhere)
    client = signed_in(member)
    assert access not in _access_keys(client.get("/api-access/").content.decode())
    assert client.post("/api-access/ec2/reveal", {"access": access}).status_code == 404
    assert access in _access_keys(signed_in(elsewhere).get("/api-access/").content.decode())


def test_a_reader_sees_the_page_and_keeps_their_own_credentials(reader):
    client = signed_in(reader)
    page = client.get("/api-access/")
    assert page.status_code == 200 and 'data-service-type="ec2"' in page.content.decode()
    # The OS-EC2 rules are "authenticated": a reader's own key, which can only read.
    access = _create(client)
    ec2 = client_for(access, _reveal(client, access))
    ec2.describe_instances()
    with pytest.raises(ClientError) as refused:
        ec2.run_instances(ImageId="ami-00000000000000000", InstanceType="m1.tiny",
                          MinCount=1, MaxCount=1)
    assert refused.value.response["Error"]["Code"] == "UnauthorizedOperation"


def test_the_openrc_and_clouds_yaml_sign_in(member):
    client = signed_in(member)
    openrc = client.get("/api-access/openrc")
    assert openrc.status_code == 200
    assert openrc["Content-Disposition"] == 'attachment; filename="alpha-openrc.sh"'
    env = _exports(openrc.content.decode())
    assert "OS_PASSWORD_INPUT" not in env.values() and PASSWORD not in openrc.content.decode()
    clouds = yaml.safe_load(client.get("/api-access/clouds.yaml").content)["clouds"]["kumo"]
    assert clouds["auth"]["auth_url"] == env["OS_AUTH_URL"] == "http://testserver/identity/v3"
    assert clouds["region_name"] == env["OS_REGION_NAME"] == "RegionOne"
    # What keystoneauth would send from them, with the password typed in.
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": env["OS_USERNAME"], "password": PASSWORD,
        "domain": {"name": env["OS_USER_DOMAIN_NAME"]}}}},
        "scope": {"project": {"id": clouds["auth"]["project_id"]}}}}
    token = Client().post("/identity/v3/auth/tokens", json.dumps(body),
                          content_type="application/json")
    assert token.status_code == 201, token.content
    assert token.json()["token"]["project"]["name"] == env["OS_PROJECT_NAME"] == "alpha"


def test_a_name_with_a_newline_cannot_add_a_command_to_the_files(member, tmp_path):
    marker = tmp_path / "ran"
    name = f"alpha\ntouch {marker}\n"
    ctx = RequestContext(user_id=member.user.pk, user_name=name, roles=("member",),
                         project_id=member.project.pk, project_name=name)
    pair = credentials.Ec2Pair(member.user.pk, member.project.pk, "a" * 32, "b" * 32)
    for text, variable in ((render_openrc(ctx, "http://x/identity/v3", "RegionOne"),
                            "OS_PROJECT_NAME"),
                           (render_ec2rc(ctx, pair, Ec2Settings("http://x/ec2", "RegionOne")),
                            "EC2_URL")):
        script = tmp_path / "rc.sh"
        script.write_text(text)
        sourced = subprocess.run(["bash", "-c", f'source {script}; printf %s "${variable}"'],
                                 check=False, stdin=subprocess.DEVNULL,
                                 capture_output=True, text=True,
                                 timeout=10)
        assert sourced.returncode == 0, sourced.stderr
        assert sourced.stdout == (name if variable == "OS_PROJECT_NAME" else "http://x/ec2")
        assert not marker.exists(), text


def _ctx(persona) -> RequestContext:
    return RequestContext(user_id=persona.user.pk, user_name=persona.user.name,
                          project_id=persona.project.pk, project_name=persona.project.name,
                          roles=("member",))


def test_what_makes_a_key_needs_the_csrf_token_and_a_session(member):
    forged = Client(enforce_csrf_checks=True)
    forged.force_login(member.user)
    for path in ("/api-access/ec2rc.sh", "/api-access/ec2/create"):
        assert forged.post(path).status_code == 403
    assert credentials.list_ec2(_ctx(member), member.user.pk) == []
    # With the page's own token it works.
    page = forged.get("/api-access/").content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    assert forged.post("/api-access/ec2rc.sh", {"csrfmiddlewaretoken": token}).status_code == 200
    assert len(credentials.list_ec2(_ctx(member), member.user.pk)) == 1
    anonymous = Client()
    assert anonymous.get("/api-access/").status_code == 302
    assert anonymous.post("/api-access/ec2rc.sh").status_code == 302


def test_bad_or_unknown_keys_are_refused_in_words(member):
    client = signed_in(member)
    missing = client.post("/api-access/ec2/reveal")
    assert missing.status_code == 400 and "Choose an EC2 credential" in missing.content.decode()
    for response in (client.post("/api-access/ec2/reveal", {"access": "nope"}),
                     client.post("/api-access/ec2rc.sh", {"access": "x" * 5000}),
                     client.get("/api-access/ec2/nope/delete")):
        assert response.status_code == 404
        assert "Could not find credential" in response.content.decode()
