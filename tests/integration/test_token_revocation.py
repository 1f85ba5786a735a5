"""Token validations are remembered in each web worker (cloud/identity/token_cache.py), and still a
revoked token, a removed role and a disabled user are refused at the very next request whichever
worker answers: on a live stack with its two gunicorn workers and the shared Redis, every request
made on a fresh connection (so the kernel hands them to either worker) after the change."""

from __future__ import annotations

import secrets

import pytest
import requests

from tests.stack import Stack

V = "/compute/v2.1"
ROUNDS = 24  # fresh connections: both workers answer some, and remember the token


@pytest.fixture(scope="module")
def stack():
    with Stack("tokens", agents=[], schedulers=0).running() as live:
        yield live


def _status(stack: Stack, token: str, method: str = "GET", path: str = f"{V}/servers") -> int:
    body = {"server": {"name": "x", "imageRef": "x", "flavorRef": "1", "networks": "none"}}
    response = requests.request(method, stack.url + path, timeout=30,
                                json=body if method == "POST" else None,
                                headers={"X-Auth-Token": token,
                                         "OpenStack-API-Version": "compute 2.60",
                                         "Connection": "close"})
    return response.status_code


def _statuses(stack: Stack, token: str, method: str = "GET") -> set[int]:
    return {_status(stack, token, method) for _ in range(ROUNDS)}


@pytest.fixture
def member(stack):
    """A new user with the member and reader roles on the admin project, and a token of it."""
    admin = stack.client()
    name, password = f"u-{secrets.token_hex(3)}", secrets.token_urlsafe(12)
    user = admin.post("/identity/v3/users", {"user": {"name": name, "password": password}})
    user.raise_for_status()
    user_id = user.json()["user"]["id"]
    project = admin.get("/identity/v3/projects?name=admin").json()["projects"][0]["id"]
    roles = {r["name"]: r["id"] for r in admin.get("/identity/v3/roles").json()["roles"]}
    for role in ("member", "reader"):
        admin.put(f"/identity/v3/projects/{project}/users/{user_id}/roles/{roles[role]}",
                  None).raise_for_status()
    return {"admin": admin, "user_id": user_id, "project": project, "roles": roles,
            "token": stack.token(user=name, password=password)}


def test_a_revoked_token_is_refused_by_every_worker_at_once(stack, member):
    token = member["token"]
    assert _statuses(stack, token) == {200}  # both workers remember it now

    revoked = requests.delete(f"{stack.url}/identity/v3/auth/tokens", timeout=30,
                              headers={"X-Auth-Token": token, "X-Subject-Token": token})
    assert revoked.status_code == 204

    assert _statuses(stack, token) == {401}


def test_a_removed_role_and_a_disabled_user_are_refused_by_every_worker_at_once(stack, member):
    token, admin = member["token"], member["admin"]
    assert _statuses(stack, token) == {200}
    assert _statuses(stack, token, "POST") == {400}  # a member: past the policy, a bad image

    removed = admin.delete(f"/identity/v3/projects/{member['project']}/users/"
                           f"{member['user_id']}/roles/{member['roles']['member']}")
    assert removed.status_code == 204

    assert _statuses(stack, token, "POST") == {403}  # a reader may not boot
    assert _statuses(stack, token) == {200}  # but may still list

    disabled = admin.request("PATCH", f"/identity/v3/users/{member['user_id']}",
                             json={"user": {"enabled": False}})
    assert disabled.status_code == 200, disabled.text

    assert _statuses(stack, token) == {401}
