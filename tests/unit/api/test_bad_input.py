"""Bad input never gets a 500: every kind of malformed request a fuzzer found (issue 11, point 6)
answers a 4xx in the body shape of the API family it was sent to.

Each row is one request as a client could send it: a lone UTF-16 surrogate or a NUL in any JSON
string (even on the token request, which needs no token), `%00` in a path id or a list filter,
JSON nested deeper than anything an API takes, a body over the request-size limit, a `limit` past
64 bits, and a `changes-since` date that cannot exist. The image API's own two items (`limit=0` on
its list, an oversized upload) are tested with the image API.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.test import Client

from tests.factories import make_server

C = "/compute/v2.1"
_SURROGATE = '"\\ud800"'  # JSON text for a lone high surrogate: valid JSON, not valid Unicode
_NUL = '"a\\u0000b"'


@dataclass
class Bad:
    label: str
    method: str
    path: str
    body: str | bytes | None = None
    status: int = 400
    persona: str | None = "member"  # None: no token at all


def _auth(name: str, password: str = '"x"') -> str:
    return ('{"auth": {"identity": {"methods": ["password"], "password": {"user": '
            f'{{"name": {name}, "domain": {{"id": "default"}}, "password": {password}}}}}}}}}')


def _server(name: str) -> str:
    return f'{{"server": {{"name": {name}, "imageRef": "x", "flavorRef": "1", "networks": "none"}}}}'


def _nested(depth: int) -> str:
    return '{"server": ' + "[" * depth + "]" * depth + "}"


ROWS = [
    # a lone surrogate or a NUL in a JSON string, a key or a value, token or not
    Bad("surrogate in the token request's user name", "POST", "/identity/v3/auth/tokens",
        _auth(_SURROGATE), persona=None),
    Bad("NUL in the token request's user name", "POST", "/identity/v3/auth/tokens",
        _auth(_NUL), persona=None),
    Bad("NUL in the token request's password", "POST", "/identity/v3/auth/tokens",
        _auth('"bob"', _NUL), persona=None),
    Bad("surrogate in a server name", "POST", f"{C}/servers", _server(_SURROGATE)),
    Bad("NUL in a server name", "POST", f"{C}/servers", _server(_NUL)),
    Bad("surrogate in an object key", "POST", f"{C}/os-keypairs",
        '{"keypair": {"name": "k", ' + _SURROGATE + ': 1}}'),
    Bad("NUL in a key pair name", "POST", f"{C}/os-keypairs", '{"keypair": {"name": ' + _NUL + "}}"),
    Bad("surrogate in a metadata value", "POST", f"{C}/servers/{{server}}/metadata",
        '{"metadata": {"k": ' + _SURROGATE + "}}"),
    Bad("NUL in a project name", "POST", "/identity/v3/projects",
        '{"project": {"name": ' + _NUL + "}}", persona="admin"),
    Bad("surrogate in a user's email", "POST", "/identity/v3/users",
        '{"user": {"name": "u", "email": ' + _SURROGATE + "}}", persona="admin"),
    Bad("a flavor rxtx_factor of nan", "POST", f"{C}/flavors",
        '{"flavor": {"name": "f", "ram": 1, "vcpus": 1, "disk": 0, "rxtx_factor": "nan"}}',
        persona="admin"),
    Bad("bytes that are not UTF-8", "POST", f"{C}/servers", b'{"server": {"name": "\xff"}}'),
    # %00 in a path id
    Bad("NUL in a server id", "GET", f"{C}/servers/abc%00def"),
    Bad("NUL in a flavor id", "GET", f"{C}/flavors/1%00"),
    Bad("NUL in a key pair name in the path", "DELETE", f"{C}/os-keypairs/k%00"),
    Bad("NUL in a metadata key in the path", "GET", f"{C}/servers/{{server}}/metadata/a%00"),
    Bad("NUL in a hypervisor id", "GET", f"{C}/os-hypervisors/%00", persona="admin"),
    Bad("NUL in a user id", "GET", "/identity/v3/users/%00", persona="admin"),
    Bad("NUL in a network id", "GET", "/network/v2.0/networks/%00"),
    # %00 in a list filter
    Bad("NUL in a server name filter", "GET", f"{C}/servers/detail?name=a%00"),
    Bad("NUL in a marker", "GET", f"{C}/flavors?marker=%00"),
    Bad("NUL in a project name filter", "GET", "/identity/v3/projects?name=%00", persona="admin"),
    Bad("NUL in a network name filter", "GET", "/network/v2.0/networks?name=%00"),
    Bad("NUL in a new network's name", "POST", "/network/v2.0/networks",
        '{"network": {"name": ' + _NUL + "}}"),
    Bad("surrogate in a security group's name", "POST", "/network/v2.0/security-groups",
        '{"security_group": {"name": ' + _SURROGATE + "}}"),
    Bad("NUL in a port's fixed IP", "POST", "/network/v2.0/ports",
        '{"port": {"network_id": "00000000-0000-0000-0000-000000000000", "fixed_ips": '
        '[{"ip_address": ' + _NUL + "}]}}"),
    Bad("NUL in a port filter", "GET", "/network/v2.0/ports?device_id=%00"),
    Bad("NUL in a rule id", "GET", "/network/v2.0/security-group-rules/%00"),
    Bad("a floating IP list filter of NUL", "GET", "/network/v2.0/floatingips?port_id=%00"),
    Bad("NUL in a query parameter's name", "GET", f"{C}/servers?%00=1"),
    # JSON nested deeper than any API takes: past the parser's recursion limit, and below it
    Bad("JSON nested 100,000 deep", "POST", f"{C}/servers", _nested(100_000)),
    Bad("JSON nested 500 deep", "POST", f"{C}/servers", _nested(500)),
    Bad("JSON nested 500 deep on the token request", "POST", "/identity/v3/auth/tokens",
        _nested(500), persona=None),
    # a body over the request-size limit
    Bad("a 3 MiB server body", "POST", f"{C}/servers",
        _server('"' + "x" * (3 * 1024 * 1024) + '"'), status=413),
    Bad("a 3 MiB token request", "POST", "/identity/v3/auth/tokens",
        _auth('"' + "x" * (3 * 1024 * 1024) + '"'), status=413, persona=None),
    Bad("a 3 MiB project body", "POST", "/identity/v3/projects",
        '{"project": {"name": "p", "description": "' + "x" * (3 * 1024 * 1024) + '"}}',
        status=413, persona="admin"),
    # a limit beyond 64 bits
    Bad("servers limit past 64 bits", "GET", f"{C}/servers?limit=99999999999999999999"),
    Bad("servers detail limit past 64 bits", "GET", f"{C}/servers/detail?limit=18446744073709551616"),
    Bad("flavors limit past 64 bits", "GET", f"{C}/flavors/detail?limit=99999999999999999999"),
    Bad("a limit given without a value", "GET", f"{C}/servers/detail?limit="),
    Bad("key pairs limit past 64 bits", "GET", f"{C}/os-keypairs?limit=99999999999999999999",
        persona="member_235"),
    Bad("server groups limit past 64 bits", "GET", f"{C}/os-server-groups?limit=99999999999999999999"),
    Bad("server groups offset past 64 bits", "GET",
        f"{C}/os-server-groups?offset=99999999999999999999"),
    Bad("instance actions limit past 64 bits", "GET",
        f"{C}/servers/{{server}}/os-instance-actions?limit=99999999999999999999", persona="member_258"),
    # an impossible changes-since
    Bad("servers changes-since on 30 February", "GET", f"{C}/servers?changes-since=2024-02-30T00:00:00Z"),
    Bad("servers changes-since at hour 25", "GET", f"{C}/servers/detail?changes-since=2024-01-01T25:00:00"),
    Bad("servers changes-since with a 99-hour offset", "GET",
        f"{C}/servers?changes-since=2024-01-01T00:00:00%2B99:00"),
    Bad("servers changes-since past year 9999 in UTC", "GET",
        f"{C}/servers?changes-since=9999-12-31T23:59:59-10:00"),
    Bad("instance actions changes-since on 30 February", "GET",
        f"{C}/servers/{{server}}/os-instance-actions?changes-since=2024-02-30T00:00:00Z",
        persona="member_258"),
]


def _family_shape(path: str, body: dict, status: int) -> bool:
    """The error body each family's clients read (cloud/api/error_bodies.py)."""
    if path.startswith("/compute"):
        (inner,) = body.values()
        return inner.get("code") == status and isinstance(inner.get("message"), str)
    if path.startswith("/network"):
        inner = body["NeutronError"]
        return {"type", "message", "detail"} <= set(inner)
    inner = body["error"]
    return inner.get("code") == status and {"title", "message"} <= set(inner)


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.label)
def test_bad_input_gets_a_4xx_in_the_family_shape(row, member, admin, db):
    personas = {"member": (member, None), "admin": (admin, None), "member_235": (member, "2.35"),
                "member_258": (member, "2.58")}
    server = make_server(member)
    path = row.path.replace("{server}", str(server.uuid))
    headers = {}
    if row.persona is not None:
        persona, version = personas[row.persona]
        headers = persona.headers(version)
    response = Client().generic(row.method, path, row.body or "", content_type="application/json",
                                **headers)
    detail = f"{row.method} {path[:120]} → {response.status_code} {response.content[:200]!r}"
    assert response.status_code == row.status, detail
    if row.status >= 400:
        assert response["Content-Type"].startswith("application/json"), detail
        assert _family_shape(path, response.json(), row.status), detail
