"""Ansible's openstack.cloud collection, as the ansible package ships it, drives a live Kumo: the
playbook in tests/compat/ansible/ runs to the end, and a second run changes nothing. What it made is
then read back through the API, openstacksdk's server_interfaces() lists the server's port, and
teardown.yml takes everything away again.

Ansible lives in .venv-ansible (requirements-ansible.txt says why and which versions), made by
scripts/setup.sh --test; the modules run with that virtualenv's Python on this machine.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import openstack
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from tests.stack import ROOT, small_qcow2

ANSIBLE_VENV = ROOT / ".venv-ansible"
PLAYBOOK = Path(__file__).parent / "ansible" / "playbook.yml"
TEARDOWN = Path(__file__).parent / "ansible" / "teardown.yml"
USER_PASSWORD = "ansible-Secret-9"
RECAP = re.compile(
    r"^localhost\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)"
    r"\s+failed=(?P<failed>\d+)",
    re.MULTILINE,
)


def public_key() -> str:
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    return key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


@pytest.fixture(scope="module")
def ansible(stack, tmp_path_factory):
    """Runs a playbook of tests/compat/ansible/ against the stack; returns its PLAY RECAP counts."""
    if not (ANSIBLE_VENV / "bin" / "ansible-playbook").exists():
        pytest.fail(f"{ANSIBLE_VENV} has no Ansible: run scripts/setup.sh --test (or make test)")
    workdir = tmp_path_factory.mktemp("ansible")
    extra_vars = workdir / "vars.json"
    extra_vars.write_text(json.dumps({
        "image_file": str(small_qcow2(workdir / "disk.qcow2")),
        "user_password": USER_PASSWORD,
        "public_key": public_key(),
    }))
    (workdir / "collections").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "ANSIBLE_"))}
    env.update({
        "OS_CLIENT_CONFIG_FILE": str(stack.workdir / "clouds.yaml"),
        "ANSIBLE_PYTHON_INTERPRETER": str(ANSIBLE_VENV / "bin" / "python"),
        "ANSIBLE_HOME": str(workdir / "home"),
        # Only the collections the ansible package ships, none a user installed elsewhere.
        "ANSIBLE_COLLECTIONS_PATH": str(workdir / "collections"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCALHOST_WARNING": "False",
        "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_tasks",
    })
    runs = iter(range(1, 100))

    def run(playbook: Path) -> dict[str, int]:
        done = subprocess.run(
            [str(ANSIBLE_VENV / "bin" / "ansible-playbook"), "-i", "localhost,", "-c", "local",
             "-e", f"@{extra_vars}", str(playbook)],
            cwd=workdir, env=env, capture_output=True, text=True, timeout=400, check=False,
        )
        output = done.stdout + done.stderr
        # CI keeps the stack's directory: the whole output of each run, for a failure's reader.
        log = stack.workdir / f"ansible-run{next(runs)}-{playbook.stem}.log"
        log.write_text(output)
        recap = RECAP.search(done.stdout)
        assert recap, f"no PLAY RECAP (exit {done.returncode}), {log}:\n{output[-6000:]}"
        counts = {k: int(v) for k, v in recap.groupdict().items()}
        assert counts["failed"] == 0 and counts["unreachable"] == 0 and done.returncode == 0, (
            f"{playbook.name} failed, {log}:\n{output[-6000:]}")
        return counts

    return run


@pytest.fixture(scope="module")
def playbook(ansible):
    """The PLAY RECAP counts of two runs of playbook.yml."""
    return [ansible(PLAYBOOK), ansible(PLAYBOOK)]


def test_the_playbook_runs_to_the_end_and_again_with_no_changes(playbook):
    first, second = playbook
    assert first["changed"] >= 10  # project, user, role, quota, flavor, image, key, group, server, stop
    assert second["changed"] == 0, "the second run changed something: see artifacts/stack/ansible-run2*"
    assert second["ok"] == first["ok"]


def test_what_the_playbook_made_reads_back_through_the_api(stack, playbook):
    api = stack.client()
    project = api.get("/identity/v3/projects?name=ansible-project").json()["projects"][0]
    assert project["description"] == "Made by Ansible" and project["enabled"] is True
    user = api.get("/identity/v3/users?name=ansible-user").json()["users"][0]
    assert user["default_project_id"] == project["id"]
    assert user["description"] == "Boots servers from Ansible"
    roles = api.get(f"/identity/v3/role_assignments?user.id={user['id']}&include_names=true").json()
    assert [(r["role"]["name"], r["scope"]["project"]["id"]) for r in roles["role_assignments"]] == [
        ("member", project["id"])]

    quota = api.get(f"/compute/v2.1/os-quota-sets/{project['id']}").json()["quota_set"]
    assert (quota["instances"], quota["cores"], quota["ram"], quota["server_groups"]) == (4, 6, 4096, 5)

    flavor = next(f for f in api.get("/compute/v2.1/flavors/detail").json()["flavors"]
                  if f["name"] == "ansible.tiny")
    assert (flavor["ram"], flavor["vcpus"], flavor["disk"]) == (128, 1, 1)
    specs = api.get(f"/compute/v2.1/flavors/{flavor['id']}/os-extra_specs").json()["extra_specs"]
    assert specs == {"hw:cpu_policy": "shared"}

    servers = api.get("/compute/v2.1/servers/detail?all_tenants=1&name=ansible-server").json()
    [server] = [s for s in servers["servers"] if s["name"] == "ansible-server"]
    assert server["tenant_id"] == project["id"] and server["user_id"] == user["id"]
    assert server["status"] == "SHUTOFF" and server["key_name"] == "ansible-key"
    assert server["metadata"] == {"role": "web", "owner": "ansible"}
    assert sorted(server["tags"]) == ["ansible", "web"]
    assert server["flavor"]["original_name"] == "ansible.tiny"
    groups = api.get("/compute/v2.1/os-server-groups?all_projects=1").json()["server_groups"]
    assert [g["members"] for g in groups if g["name"] == "ansible-group"] == [[server["id"]]]


def test_openstacksdk_lists_the_servers_interfaces(stack, playbook):
    conn = openstack.connect(
        auth_url=f"{stack.url}/identity/v3", username="ansible-user", password=USER_PASSWORD,
        project_name="ansible-project", user_domain_name="Default",
        project_domain_name="Default", region_name="RegionOne", load_yaml_config=False,
        load_envvars=False,
    )
    try:
        server = conn.compute.find_server("ansible-server", ignore_missing=False)
        [interface] = list(conn.compute.server_interfaces(server))
        network = conn.network.find_network("private", ignore_missing=False)
        assert interface.net_id == network.id
        [fixed] = interface.fixed_ips
        assert fixed["ip_address"] in {a["addr"] for a in conn.compute.get_server(server)
                                       .addresses["private"]}
        port = conn.network.get_port(interface.port_id)
        assert port.device_id == server.id and port.mac_address == interface.mac_addr
    finally:
        conn.close()


def test_the_teardown_playbook_takes_it_all_away(stack, ansible, playbook):
    # Last in this module: the state: absent side of each module, the network quota reset included.
    done = ansible(TEARDOWN)
    assert done["changed"] == 9
    api = stack.client()
    assert api.get("/identity/v3/projects?name=ansible-project").json()["projects"] == []
    assert api.get("/identity/v3/users?name=ansible-user").json()["users"] == []
    servers = api.get("/compute/v2.1/servers?all_tenants=1&name=ansible-server").json()["servers"]
    assert [s for s in servers if s["name"] == "ansible-server"] == []
    flavors = api.get("/compute/v2.1/flavors?is_public=None").json()["flavors"]
    assert "ansible.tiny" not in {f["name"] for f in flavors}
