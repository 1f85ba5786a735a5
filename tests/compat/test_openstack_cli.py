"""The real, unmodified python-openstackclient runs the README's scenario against a live stack."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.helpers import node_rows, wait_until
from tests.stack import small_qcow2

OPENSTACK = str(Path(sys.executable).parent / "openstack")


@pytest.fixture(scope="module")
def osc(stack, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("osc")
    env = stack.openstack_env()

    def run(*args: str, parse: bool = False):
        argv = [OPENSTACK, *args]
        if parse:
            argv += ["-f", "json"]
        done = subprocess.run(argv, cwd=workdir, env=env, capture_output=True, text=True, timeout=180,
                              check=False)
        assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
        return json.loads(done.stdout) if parse else done.stdout

    run.workdir = workdir
    return run


def test_readme_scenario_with_the_real_openstack_client(stack, osc):
    token = osc("token", "issue", parse=True)
    assert token["id"] and token["project_id"] and token["user_id"]

    small_qcow2(osc.workdir / "disk.qcow2")
    image = osc("image", "create", "--file", "disk.qcow2", "--disk-format", "qcow2",
                "--container-format", "bare", "tiny", parse=True)
    assert image["status"] == "active"

    flavors = {f["Name"]: f for f in osc("flavor", "list", parse=True)}
    assert {"m1.tiny", "m1.small", "m1.medium"} <= set(flavors)
    assert flavors["m1.tiny"]["RAM"] == 128 and flavors["m1.tiny"]["ID"] == "1"

    server = osc("server", "create", "--image", "tiny", "--flavor", "m1.tiny", "--nic", "none",
                 "--wait", "vm1", parse=True)
    assert server["status"] == "ACTIVE"
    server_id = server["id"]
    host = server["OS-EXT-SRV-ATTR:host"]
    wait_until(lambda: server_id in node_rows(stack)[host]["domains"],
               what="the domain to exist on the compute host")

    listed = osc("server", "list", parse=True)
    assert [(s["Name"], s["Status"]) for s in listed if s["ID"] == server_id] == [("vm1", "ACTIVE")]
    assert any(s["Image"] == "tiny" and s["Flavor"] == "m1.tiny" for s in listed)

    shown = osc("server", "show", "vm1", parse=True)
    assert shown["id"] == server_id and shown["status"] == "ACTIVE"
    flavor = shown["flavor"]
    assert (flavor.get("original_name") if isinstance(flavor, dict) else flavor).startswith("m1.tiny")

    osc("server", "delete", "--wait", "vm1")
    wait_until(lambda: server_id not in node_rows(stack)[host]["domains"],
               what="the domain to be gone")
    assert all(s["ID"] != server_id for s in osc("server", "list", parse=True))
    osc("image", "delete", "tiny")


def test_client_sees_clear_errors_for_unknown_things(osc, stack):
    env = stack.openstack_env()
    done = subprocess.run([OPENSTACK, "server", "show", "no-such-server"], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode != 0
    assert "No Server found for no-such-server" in done.stderr
    done = subprocess.run([OPENSTACK, "server", "create", "--image", "nope", "--flavor", "m1.tiny",
                           "--nic", "none", "x"], env=env, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode != 0 and "Traceback" not in done.stderr


def test_server_actions_and_tenancy_with_the_real_client(stack, osc):
    small_qcow2(osc.workdir / "act.qcow2")
    osc("image", "create", "--file", "act.qcow2", "--disk-format", "qcow2",
        "--container-format", "bare", "act-image")
    osc("server", "create", "--image", "act-image", "--flavor", "m1.tiny", "--network", "private",
        "--wait", "act1")
    assert osc("server", "show", "act1", parse=True)["addresses"]["private"][0].startswith("10.0.0.")
    def settled(status: str) -> bool:
        shown = osc("server", "show", "act1", parse=True)
        return shown["status"] == status and not shown["OS-EXT-STS:task_state"]

    osc("server", "stop", "act1")
    wait_until(lambda: settled("SHUTOFF"), what="act1 to stop")
    osc("server", "start", "act1")
    wait_until(lambda: settled("ACTIVE"), what="act1 to start")
    osc("server", "reboot", "--hard", "--wait", "act1")
    assert "test driver" in osc("console", "log", "show", "--lines", "3", "act1")
    osc("server", "resize", "--flavor", "m1.small", "--wait", "act1")
    assert osc("server", "show", "act1", parse=True)["status"] == "VERIFY_RESIZE"
    osc("server", "resize", "confirm", "act1")
    osc("server", "image", "create", "--name", "act1-snap", "--wait", "act1")
    assert osc("image", "show", "act1-snap", parse=True)["status"] == "active"
    actions = osc("server", "event", "list", "act1", parse=True)
    assert {"create", "stop", "start", "reboot", "resize", "confirmResize", "createImage"} <= {
        a["Action"] for a in actions}

    osc("project", "create", "team-osc")
    osc("user", "create", "--project", "team-osc", "--password", "pw-osc-1234", "osc-user")
    osc("role", "add", "--user", "osc-user", "--project", "team-osc", "member")
    names = osc("role", "assignment", "list", "--names", "--project", "team-osc", parse=True)
    assert [(a["User"], a["Role"]) for a in names] == [("osc-user@Default", "member")]
    env = {**stack.openstack_env(), "OS_USERNAME": "osc-user", "OS_PASSWORD": "pw-osc-1234",
           "OS_PROJECT_NAME": "team-osc"}
    theirs = subprocess.run([OPENSTACK, "server", "list", "-f", "json"], env=env, check=False,
                            capture_output=True, text=True, timeout=120)
    assert theirs.returncode == 0 and json.loads(theirs.stdout) == []
    forbidden = subprocess.run([OPENSTACK, "project", "create", "nope"], env=env, check=False,
                               capture_output=True, text=True, timeout=120)
    assert forbidden.returncode != 0 and "403" in forbidden.stderr

    osc("server", "delete", "--wait", "act1")
    osc("image", "delete", "act1-snap", "act-image")
