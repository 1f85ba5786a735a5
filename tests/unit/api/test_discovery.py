"""Version discovery at the API roots, as the clients and Tempest's discovery classes read it
(identity.v3.test_api_discovery.TestApiDiscovery, compute.test_versions.TestVersions): the roots
answer with and without a trailing slash, and every self link leads to a document that links back
to itself."""

from __future__ import annotations

from urllib.parse import urlsplit

import jsonschema
import pytest
from django.test import Client

# Tempest's compute version schema (tempest/lib/api_schema/response/compute/v2_1/versions.py):
# strict, so a key Nova does not send fails the discovery class.
_COMPUTE_VERSION = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "links": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"href": {"type": "string"}, "rel": {"type": "string"},
                               "type": {"type": "string"}},
                "required": ["href", "rel"],
                "additionalProperties": False,
            },
        },
        "status": {"type": "string"},
        "updated": {"type": "string"},
        "version": {"type": "string"},
        "min_version": {"type": "string"},
        "media-types": {"type": "array"},
    },
    "required": ["id", "links", "status", "updated"],
    "additionalProperties": False,
}
_IDENTITY_KEYS = {"id", "links", "media-types", "status", "updated"}


def _self_link(version: dict) -> str:
    (link,) = [x["href"] for x in version["links"] if x["rel"] == "self"]
    return link


@pytest.mark.parametrize("path", ["/identity", "/identity/"])
def test_identity_root_lists_v3_with_300(path):
    response = Client().get(path)
    assert response.status_code == 300
    (v3,) = response.json()["versions"]["values"]
    assert _IDENTITY_KEYS <= set(v3) and "v3" in v3["id"]
    assert v3["status"].lower() in ("current", "stable", "experimental", "supported", "deprecated")
    assert ("application/json", "application/vnd.openstack.identity-v3+json") in [
        (m["base"], m["type"]) for m in v3["media-types"]
    ]


@pytest.mark.parametrize("path", ["/identity/v3", "/identity/v3/"])
def test_identity_v3_describes_itself(path):
    response = Client().get(path)
    assert response.status_code == 200
    version = response.json()["version"]
    assert _IDENTITY_KEYS <= set(version)
    assert urlsplit(_self_link(version)).path == "/identity/v3/"


@pytest.mark.parametrize("path", ["/compute", "/compute/"])
def test_compute_root_lists_v20_first_in_tempests_shape(path):
    response = Client().get(path)
    assert response.status_code == 200
    versions = response.json()["versions"]
    assert [v["id"] for v in versions] == ["v2.0", "v2.1"]
    for version in versions:
        jsonschema.validate(version, _COMPUTE_VERSION)


def test_every_compute_self_link_leads_to_a_document_that_links_back(member):
    client = Client()
    for listed in client.get("/compute/").json()["versions"]:
        href = _self_link(listed)
        # Tempest fetches each document with a token, which a public document ignores.
        response = client.get(urlsplit(href).path, HTTP_X_AUTH_TOKEN=member.token)
        assert response.status_code == 200, href
        document = response.json()["version"]
        jsonschema.validate(document, _COMPUTE_VERSION)
        assert document["id"] == listed["id"]
        assert _self_link(document) == href
        assert document["media-types"][0]["base"] == "application/json"


@pytest.mark.parametrize("path", ["/compute/v2", "/compute/v2/", "/compute/v2.1", "/compute/v2.1/"])
def test_compute_version_documents_need_no_token(path):
    response = Client().get(path)
    assert response.status_code == 200
    assert response.json()["version"]["id"] in ("v2.0", "v2.1")
