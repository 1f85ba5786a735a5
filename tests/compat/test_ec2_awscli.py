"""The AWS CLI v1 as published (.venv/bin/aws) runs an EC2 script against the live stack (issue 18):
key pair, two tagged instances with user data, `aws ec2 wait`, filters and --query, console
output, stop/start, an image, a security group, a volume attached and detached, terminate. The
script (tests/compat/ec2/aws_cli_flow.sh) is what one would run against AWS but for the
endpoint; this test checks what it printed against the OpenStack API."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.compat import ec2
from tests.compat.ec2 import ec2_id
from tests.stack import qcow2_bytes

SCRIPT = Path(__file__).parent / "ec2" / "aws_cli_flow.sh"
V = "/compute/v2.1"


def _cli_env(stack, access: str, secret: str, workdir: Path, image: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "OS_"))}
    (workdir / "config").write_text("[default]\n")
    (workdir / "credentials").write_text("")
    env.update({
        "PATH": f"{Path(ec2.AWS).parent}:{env.get('PATH', '')}",
        "AWS_ACCESS_KEY_ID": access, "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_DEFAULT_REGION": ec2.REGION,
        # Files of its own, so the machine's ~/.aws is neither read nor written.
        "AWS_CONFIG_FILE": str(workdir / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(workdir / "credentials"),
        "AWS_PAGER": "", "HOME": str(workdir),
        "KUMO_EC2": ec2.endpoint(stack.url), "IMAGE": image, "WORKDIR": str(workdir),
    })
    return env


def test_an_aws_cli_script_runs_unchanged_but_for_the_endpoint(stack, tmp_path):
    api = stack.client("2.60")
    image_id = api.upload_image("ec2-awscli", qcow2_bytes())
    access, secret = ec2.ec2_credential(stack.openstack_env())
    done = subprocess.run(["bash", str(SCRIPT)], env=_cli_env(stack, access, secret, tmp_path,
                                                              ec2_id("ami", image_id)),
                          capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, f"the script failed:\n{done.stdout}\n{done.stderr}"
    said = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    assert said["done"] == "yes"

    first, second = said["instances"].split()
    assert first.startswith("i-") and second.startswith("i-") and first != second
    assert said["running"] == " ".join(sorted([first, second]))
    assert said["tagged"] == "awscli"
    assert said["console"].startswith("[kumo test driver]")
    assert said["stopped"] == "stopped"
    assert said["terminated"] == "terminated terminated"
    assert said["image"].startswith("ami-") and said["image"] != ec2_id("ami", image_id)
    assert said["group"].startswith("sg-")
    assert said["group_rule"] == "tcp 22 22 198.51.100.0/24"
    assert said["volume"].startswith("vol-")
    assert said["attached"] == f"{second} attached"

    # What the script made and removed, seen through the OpenStack API.
    servers = api.get(f"{V}/servers?all_tenants=1").json()["servers"]
    assert not {ec2_id("i", s["id"]) for s in servers} & {first, second}
    actions = api.get(f"{V}/servers/{_uuid_of(api, first)}/os-instance-actions").json()
    assert {"create", "stop", "start", "createImage", "delete"} <= {
        a["action"] for a in actions["instanceActions"]}
    assert api.get("/image/v2/images?name=cli-snap").json()["images"] == []
    assert api.get("/network/v2.0/security-groups?name=cli-ssh").json()["security_groups"] == []
    assert api.get(f"{V}/os-keypairs/cli-key").status_code == 404
    api.request("DELETE", f"/image/v2/images/{image_id}").raise_for_status()


def _uuid_of(api, instance_id: str) -> str:
    """The uuid of a deleted server whose i- id this is, from the deleted servers an admin may
    list (Nova's `deleted=True`)."""
    gone = api.get(f"{V}/servers/detail?all_tenants=1&deleted=true").json()["servers"]
    found = [s["id"] for s in gone if ec2_id("i", s["id"]) == instance_id]
    assert len(found) == 1, f"{instance_id} is not one deleted server"
    return found[0]
