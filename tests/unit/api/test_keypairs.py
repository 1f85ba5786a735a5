"""/os-keypairs through the API: generate and import, shapes and status codes per microversion,
name rules, ownership, paging, quota, and booting a server with a key pair."""

from __future__ import annotations

import base64
import datetime
import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from cloud.compute.models import Instance, KeyPair
from cloud.identity.models import Quota
from tests.factories import boot

V = "/compute/v2.1"
# Made with `ssh-keygen -t ed25519`; its fingerprint as `ssh-keygen -l -E md5` prints it.
ED25519 = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIP1BAbGe7FzEeHQwtjEIl7VKLRkhvT+NWsd+xBRDsbpc me@host"
)
ED25519_MD5 = "2b:35:28:f5:3f:8c:49:6a:c6:56:23:86:38:e0:2e:1b"

CREATE_KEYS_21 = {"name", "public_key", "fingerprint", "user_id"}
SHOW_KEYS_21 = CREATE_KEYS_21 | {"id", "deleted", "created_at", "updated_at", "deleted_at"}


def _create(api, name="kp1", version=None, **fields):
    return api.post(f"{V}/os-keypairs", {"keypair": {"name": name, **fields}}, version=version)


def _md5_colon(public_key: str) -> str:
    digest = hashlib.md5(base64.b64decode(public_key.split()[1])).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def _certificate_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kumo-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


# --- create


def test_creating_without_a_public_key_at_2_1_generates_one_and_answers_200(member, api_as):
    response = _create(api_as(member))
    assert response.status_code == 200, response.content
    keypair = response.json()["keypair"]
    assert set(keypair) == CREATE_KEYS_21 | {"private_key"}
    assert keypair["name"] == "kp1"
    assert keypair["user_id"] == member.user.id
    assert keypair["public_key"].startswith("ssh-rsa ")
    assert keypair["fingerprint"] == _md5_colon(keypair["public_key"])
    stored = KeyPair.objects.get(user=member.user, name="kp1")
    assert (stored.public_key, stored.fingerprint, stored.type) == (
        keypair["public_key"], keypair["fingerprint"], "ssh",
    )


def test_a_generated_private_key_belongs_to_its_public_key(member, api_as):
    keypair = _create(api_as(member)).json()["keypair"]
    private = serialization.load_pem_private_key(keypair["private_key"].encode(), password=None)
    assert private.key_size == 2048
    derived = private.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    ).decode()
    assert keypair["public_key"].split()[:2] == derived.split()
    assert "PRIVATE KEY" not in KeyPair.objects.get(name="kp1").public_key


def test_from_2_2_create_answers_201_and_says_the_type(member, api_as):
    response = _create(api_as(member), version="2.2")
    assert response.status_code == 201, response.content
    keypair = response.json()["keypair"]
    assert set(keypair) == CREATE_KEYS_21 | {"private_key", "type"}
    assert keypair["type"] == "ssh"


def test_importing_a_public_key_stores_it_with_its_md5_fingerprint_and_returns_no_private_key(
    member, api_as
):
    response = _create(api_as(member), public_key=ED25519, version="2.2")
    assert response.status_code == 201, response.content
    keypair = response.json()["keypair"]
    assert set(keypair) == CREATE_KEYS_21 | {"type"}
    assert keypair["fingerprint"] == ED25519_MD5
    assert keypair["public_key"] == ED25519


@pytest.mark.parametrize(
    "public_key",
    [
        "not a key",
        "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ== broken",
        "ssh-ed25519 !!!notbase64",
        "",
        ED25519.replace("ssh-ed25519", "ssh-rsa"),
    ],
)
def test_an_invalid_public_key_is_400_and_nothing_is_stored(member, api_as, public_key):
    response = _create(api_as(member), public_key=public_key)
    assert response.status_code == 400, response.content
    assert "Keypair data is invalid" in response.json()["badRequest"]["message"]
    assert not KeyPair.objects.exists()


def test_an_x509_certificate_can_be_imported_from_2_2(member, api_as):
    pem = _certificate_pem()
    response = _create(api_as(member), public_key=pem, type="x509", version="2.2")
    assert response.status_code == 201, response.content
    keypair = response.json()["keypair"]
    assert keypair["type"] == "x509"
    cert = x509.load_pem_x509_certificate(pem.encode())
    assert keypair["fingerprint"].replace(":", "") == cert.fingerprint(hashes.SHA1()).hex()


def test_type_is_not_accepted_before_2_2(member, api_as):
    assert _create(api_as(member), type="ssh").status_code == 400


def test_a_certificate_sent_as_an_ssh_key_or_garbage_sent_as_x509_is_400(member, api_as):
    api = api_as(member)
    assert _create(api, public_key=_certificate_pem(), version="2.2").status_code == 400
    assert _create(api, public_key=ED25519, type="x509", version="2.2").status_code == 400


def test_an_x509_key_pair_is_generated_from_2_2_as_nova_made_them(member, api_as):
    response = _create(api_as(member), type="x509", version="2.2")
    assert response.status_code == 201, response.content
    keypair = response.json()["keypair"]
    assert keypair["type"] == "x509"
    cert = x509.load_pem_x509_certificate(keypair["public_key"].encode())
    assert cert.subject.rfc4514_string() == f"CN={member.user.id}"
    assert keypair["fingerprint"].replace(":", "") == cert.fingerprint(hashes.SHA1()).hex()
    private = serialization.load_pem_private_key(keypair["private_key"].encode(), password=None)
    assert private.public_key().public_numbers() == cert.public_key().public_numbers()
    stored = KeyPair.objects.get(user=member.user, name="kp1")
    assert (stored.type, stored.public_key) == ("x509", keypair["public_key"].strip())
    assert "PRIVATE KEY" not in stored.public_key


@pytest.mark.parametrize("name", ["my key", "kp_1-a", "x" * 255, "9"])
def test_names_of_letters_digits_spaces_and_underscore_dash_are_accepted(member, api_as, name):
    response = _create(api_as(member), name=name, public_key=ED25519)
    assert response.status_code == 200, response.content
    assert response.json()["keypair"]["name"] == name


@pytest.mark.parametrize("name", ["kp_1-a.b", "alice@laptop"])
def test_dot_and_at_sign_are_accepted_from_2_92_only(member, api_as, mv2104, name):
    api = api_as(member)
    assert _create(api, name=name, public_key=ED25519, version="2.91").status_code == 400
    response = _create(api, name=name, public_key=ED25519, version="2.92")
    assert response.status_code == 201, response.content
    assert response.json()["keypair"]["name"] == name


def test_from_2_92_a_key_pair_is_imported_never_generated(member, api_as, mv2104):
    api = api_as(member)
    refused = _create(api, name="gen", version="2.92")
    assert refused.status_code == 400, refused.content
    assert "public_key" in refused.json()["badRequest"]["message"]
    generated = _create(api, name="gen", version="2.91")
    assert generated.status_code == 201
    assert "private_key" in generated.json()["keypair"]


@pytest.mark.parametrize("name", ["", "   ", "x" * 256, "semi;colon", "slash/", "ünïcode", 7, None])
def test_other_names_are_400(member, api_as, name):
    response = _create(api_as(member), name=name, public_key=ED25519)
    assert response.status_code == 400, response.content
    assert not KeyPair.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        {"keypair": {"public_key": ED25519}},
        {"keypair": {"name": "kp", "bogus": 1}},
        {"keypair": "kp"},
        {"name": "kp"},
    ],
)
def test_malformed_bodies_are_400(member, api_as, body):
    assert api_as(member).post(f"{V}/os-keypairs", body).status_code == 400


def test_a_duplicate_name_for_the_same_user_is_409_but_another_user_may_reuse_it(
    member, other, api_as
):
    assert _create(api_as(member), public_key=ED25519).status_code == 200
    response = _create(api_as(member))
    assert response.status_code == 409
    assert response.json()["conflictingRequest"]["message"] == "Key pair 'kp1' already exists."
    assert _create(api_as(other), public_key=ED25519).status_code == 200


def test_a_user_over_the_key_pair_quota_gets_403_and_no_key(member, api_as):
    Quota.objects.create(project=member.project, resource="key_pairs", hard_limit=2)
    api = api_as(member)
    for name in ("a", "b"):
        assert _create(api, name=name, public_key=ED25519).status_code == 200
    response = _create(api, name="c", public_key=ED25519)
    assert response.status_code == 403
    assert response.json()["forbidden"]["message"] == (
        "Quota exceeded for key_pairs: Requested 1, but already used 2 of 2 key_pairs"
    )
    assert KeyPair.objects.filter(user=member.user).count() == 2


def test_a_reader_may_keep_key_pairs_of_their_own(reader, api_as):
    assert _create(api_as(reader), public_key=ED25519).status_code == 200


def test_without_a_token_key_pairs_are_401(api_as):
    assert api_as(None).get(f"{V}/os-keypairs").status_code == 401


# --- list, show, delete


def test_the_list_wraps_each_key_pair_and_shows_only_the_callers(member, other, api_as):
    _create(api_as(member), name="mine", public_key=ED25519)
    _create(api_as(other), name="theirs", public_key=ED25519)
    body = api_as(member).get(f"{V}/os-keypairs").json()
    assert body == {
        "keypairs": [
            {"keypair": {"name": "mine", "public_key": ED25519, "fingerprint": ED25519_MD5}}
        ]
    }
    listed = api_as(member).get(f"{V}/os-keypairs", version="2.2").json()["keypairs"]
    assert listed[0]["keypair"]["type"] == "ssh"


def test_show_has_the_database_fields_and_type_from_2_2(member, api_as):
    _create(api_as(member), public_key=ED25519)
    response = api_as(member).get(f"{V}/os-keypairs/kp1")
    assert response.status_code == 200
    shown = response.json()["keypair"]
    assert set(shown) == SHOW_KEYS_21
    stored = KeyPair.objects.get(name="kp1")
    assert shown["id"] == stored.id
    assert (shown["deleted"], shown["updated_at"], shown["deleted_at"]) == (False, None, None)
    assert shown["user_id"] == member.user.id
    assert datetime.datetime.fromisoformat(shown["created_at"])
    assert set(api_as(member).get(f"{V}/os-keypairs/kp1", version="2.2").json()["keypair"]) == (
        SHOW_KEYS_21 | {"type"}
    )


def test_someone_elses_key_pair_answers_404_like_a_missing_one(member, other, api_as):
    _create(api_as(member), name="secret", public_key=ED25519)
    for api in (api_as(other), api_as(member)):
        missing = api.get(f"{V}/os-keypairs/none-such")
        assert missing.status_code == 404
    foreign = api_as(other).get(f"{V}/os-keypairs/secret")
    assert foreign.status_code == 404
    assert set(foreign.json()) == {"itemNotFound"}
    assert api_as(other).delete(f"{V}/os-keypairs/secret").status_code == 404
    assert KeyPair.objects.filter(name="secret").exists()


def test_a_name_with_a_space_or_at_sign_round_trips_through_the_url(member, api_as, mv2104):
    _create(api_as(member), name="me@laptop key", public_key=ED25519, version="2.92")
    assert api_as(member).get(f"{V}/os-keypairs/me@laptop%20key").status_code == 200


@pytest.mark.parametrize("version, status", [("2.1", 202), ("2.2", 204), ("2.60", 204)])
def test_delete_answers_202_before_2_2_and_204_after(member, api_as, version, status):
    api = api_as(member)
    _create(api, public_key=ED25519)
    response = api.delete(f"{V}/os-keypairs/kp1", version=version)
    assert response.status_code == status
    assert response.content in (b"", b"null")
    assert api.get(f"{V}/os-keypairs/kp1").status_code == 404
    assert api.delete(f"{V}/os-keypairs/kp1", version=version).status_code == 404


# --- another user's key pairs (2.10)


def test_from_2_10_an_admin_manages_another_users_key_pairs_with_user_id(admin, member, api_as):
    admin_api = api_as(admin, "2.10")
    uid = member.user.id
    created = admin_api.post(
        f"{V}/os-keypairs", {"keypair": {"name": "given", "public_key": ED25519, "user_id": uid}}
    )
    assert created.status_code == 201, created.content
    assert created.json()["keypair"]["user_id"] == uid
    assert KeyPair.objects.get(name="given").user_id == uid
    listed = admin_api.get(f"{V}/os-keypairs?user_id={uid}").json()["keypairs"]
    assert [k["keypair"]["name"] for k in listed] == ["given"]
    assert admin_api.get(f"{V}/os-keypairs").json()["keypairs"] == []  # the admin's own
    assert admin_api.get(f"{V}/os-keypairs/given?user_id={uid}").json()["keypair"]["user_id"] == uid
    assert admin_api.delete(f"{V}/os-keypairs/given?user_id={uid}").status_code == 204
    assert not KeyPair.objects.filter(name="given").exists()


def test_a_member_naming_another_user_is_403(admin, member, api_as):
    api = api_as(member, "2.10")
    assert api.get(f"{V}/os-keypairs?user_id={admin.user.id}").status_code == 403
    body = {"keypair": {"name": "k", "public_key": ED25519, "user_id": admin.user.id}}
    assert api.post(f"{V}/os-keypairs", body).status_code == 403
    assert api.get(f"{V}/os-keypairs?user_id={member.user.id}").status_code == 200  # themselves


def test_before_2_10_user_id_is_ignored_in_the_query_and_refused_in_the_body(
    admin, member, api_as
):
    _create(api_as(member), public_key=ED25519)
    listed = api_as(admin, "2.9").get(f"{V}/os-keypairs?user_id={member.user.id}").json()
    assert listed["keypairs"] == []
    body = {"keypair": {"name": "k", "public_key": ED25519, "user_id": member.user.id}}
    assert api_as(admin, "2.9").post(f"{V}/os-keypairs", body).status_code == 400


def test_an_admin_creating_for_an_unknown_user_is_400(admin, api_as):
    body = {"keypair": {"name": "k", "public_key": ED25519, "user_id": "nobody"}}
    assert api_as(admin, "2.10").post(f"{V}/os-keypairs", body).status_code == 400


# --- paging (2.35)


def test_from_2_35_the_list_pages_by_name_marker_with_a_next_link(member, api_as):
    api = api_as(member, "2.35")
    for name in ("c", "a", "b"):
        _create(api, name=name, public_key=ED25519)
    first = api.get(f"{V}/os-keypairs?limit=2").json()
    assert [k["keypair"]["name"] for k in first["keypairs"]] == ["c", "a"]  # creation order
    next_href = first["keypairs_links"][0]["href"]
    assert next_href.endswith("/compute/v2.1/os-keypairs?limit=2&marker=a")
    rest = api.get(f"{V}/os-keypairs?limit=2&marker=a").json()
    assert [k["keypair"]["name"] for k in rest["keypairs"]] == ["b"]
    assert "keypairs_links" not in rest
    assert api.get(f"{V}/os-keypairs?marker=zzz").status_code == 400
    assert api.get(f"{V}/os-keypairs?limit=x").status_code == 400


def test_before_2_35_limit_is_ignored(member, api_as):
    api = api_as(member)
    for name in ("a", "b", "c"):
        _create(api, name=name, public_key=ED25519)
    body = api.get(f"{V}/os-keypairs?limit=1").json()
    assert len(body["keypairs"]) == 3
    assert "keypairs_links" not in body


# --- servers booted with a key pair


def test_a_server_booted_with_a_key_name_carries_that_public_key(member, api_as, tiny, image):
    _create(api_as(member), public_key=ED25519)
    response = boot(api_as(member), image, key_name="kp1")
    assert response.status_code == 202, response.content
    instance = Instance.objects.get(pk=response.json()["server"]["id"])
    assert (instance.key_name, instance.key_data) == ("kp1", ED25519)


def test_a_key_name_the_user_does_not_have_is_400_and_no_server_is_made(
    member, other, api_as, tiny, image
):
    _create(api_as(other), public_key=ED25519)  # same name, someone else's
    response = boot(api_as(member), image, key_name="kp1")
    assert response.status_code == 400
    assert response.json()["badRequest"]["message"] == "Invalid key_name provided."
    assert not Instance.objects.exists()


def test_a_server_without_a_key_name_has_no_key_data(member, api_as, tiny, image):
    response = boot(api_as(member), image)
    assert response.status_code == 202
    assert Instance.objects.get().key_data == ""
