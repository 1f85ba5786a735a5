"""Fifty concurrent boots against an instance quota of ten, on a live stack on PostgreSQL: the
quota lock lets exactly the allowed number through, and what the quota API reports as used is
what the database holds."""

from __future__ import annotations

import json
import secrets
import subprocess
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from tests.stack import PYTHON, ROOT, AgentSpec, Stack, small_qcow2

V = "/compute/v2.1"
QUOTA = 10
REQUESTS = 50
OVER_LIMIT = {
    "forbidden": {
        "code": 403,
        "message": f"Quota exceeded for instances: Requested 1, but already used {QUOTA} of "
        f"{QUOTA} instances",
    }
}

# Runs inside the stack's environment (its database), so the test needs no identity admin API.
_MAKE_MEMBER = """
import json
from cloud.identity.models import Project, Role, RoleAssignment, User
project = Project.objects.create(name={project!r})
user = User.objects.create_user({user!r}, {password!r})
for name in ("member", "reader"):
    role = Role.objects.get_or_create(name=name)[0]
    RoleAssignment.objects.create(user=user, project=project, role=role)
print(json.dumps({{"project_id": project.id}}))
"""


def make_member(stack: Stack, project: str, user: str, password: str) -> str:
    """A new project with one member user; returns the project's id."""
    code = _MAKE_MEMBER.format(project=project, user=user, password=password)
    done = subprocess.run(
        [PYTHON, "manage.py", "shell", "-c", code],
        cwd=ROOT, env=stack.env, check=True, capture_output=True, text=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])["project_id"]


def live_instance_rows(stack: Stack, project_id: str) -> int:
    url = stack.env["DATABASE_URL"].replace("postgres://", "postgresql://")
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT count(*) FROM compute_instance WHERE project_id = %s AND NOT deleted",
            [project_id],
        ).fetchone()[0]


@pytest.fixture(scope="module")
def quota_stack():
    # A stack of its own: the race needs a project nobody else boots into.
    live = Stack("quota_race", agents=[AgentSpec("race-a"), AgentSpec("race-b")])
    with live.running():
        yield live


def test_fifty_concurrent_boots_against_a_quota_of_ten_let_exactly_ten_through(quota_stack):
    stack = quota_stack
    password = secrets.token_urlsafe(12)
    project_id = make_member(stack, "quota-race", "racer", password)

    admin = stack.client()
    response = admin.put(f"{V}/os-quota-sets/{project_id}", {"quota_set": {"instances": QUOTA}})
    assert response.status_code == 200, response.text
    assert response.json()["quota_set"]["instances"] == QUOTA

    member = stack.client(user="racer", password=password, project="quota-race")
    disk = small_qcow2(stack.workdir / "race.qcow2")
    disk_format = "qcow2" if disk.read_bytes()[:4] == b"QFI\xfb" else "raw"
    image_id = member.upload_image("race-image", disk.read_bytes(), disk_format)

    def boot(i: int):
        body = {"server": {"name": f"race-{i}", "imageRef": image_id, "flavorRef": "1",
                           "networks": "none"}}
        return member.post(f"{V}/servers", body)

    with ThreadPoolExecutor(max_workers=REQUESTS) as pool:
        responses = list(pool.map(boot, range(REQUESTS)))

    statuses = sorted(r.status_code for r in responses)
    accepted = [r for r in responses if r.status_code == 202]
    refused = [r for r in responses if r.status_code == 403]
    assert len(accepted) <= QUOTA
    assert len(accepted) + len(refused) == REQUESTS, statuses
    assert len(accepted) == QUOTA, statuses  # the lock serialises; it does not refuse spuriously
    for r in refused:
        assert r.json() == OVER_LIMIT

    rows = live_instance_rows(stack, project_id)
    detail = member.get(f"{V}/os-quota-sets/{project_id}/detail").json()["quota_set"]
    assert detail["instances"] == {"in_use": rows, "limit": QUOTA, "reserved": 0}
    assert rows == len(accepted)
    assert detail["cores"]["in_use"] == rows  # m1.tiny: one vCPU each
    limits = member.get(f"{V}/limits").json()["limits"]["absolute"]
    assert limits["totalInstancesUsed"] == rows
