"""What the EC2 compat tests share: an EC2 credential made by the real `openstack ec2 credentials
create`, a boto3 client of the live stack's /ec2 endpoint, and the EC2 id a Kumo uuid must have
(written out here, not imported from cloud.ids, so the tests pin the mapping docs/ec2.md states)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import boto3
from botocore.config import Config

OPENSTACK = str(Path(sys.executable).parent / "openstack")
AWS = str(Path(sys.executable).parent / "aws")
REGION = "RegionOne"
# boto3's waiters poll every 15 s by default; a test-driver boot takes well under a second.
FAST = {"Delay": 1, "MaxAttempts": 90}


def ec2_credential(env: dict[str, str]) -> tuple[str, str]:
    """A new access key and secret of the OS_* user on their project, made as a user makes one:
    `openstack ec2 credentials create` (Keystone's OS-EC2 API)."""
    done = subprocess.run([OPENSTACK, "ec2", "credentials", "create", "-f", "json"], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, f"ec2 credentials create failed:\n{done.stdout}\n{done.stderr}"
    made = {k.lower(): v for k, v in json.loads(done.stdout).items()}
    assert made["access"] and made["secret"] and made["access"] != made["secret"]
    return made["access"], made["secret"]


def endpoint(url: str) -> str:
    return f"{url}/ec2"


def client(url: str, access: str, secret: str, **config: object):
    """boto3's EC2 client of the stack at `url`, as a user would make one: the endpoint is the only
    thing that differs from AWS. No retries, so a refusal is seen as it is."""
    return boto3.client("ec2", endpoint_url=endpoint(url), region_name=REGION,
                        aws_access_key_id=access, aws_secret_access_key=secret,
                        config=Config(retries={"max_attempts": 1}, **config))


def ec2_id(prefix: str, uuid: str) -> str:
    """EC2's id of the Kumo resource `uuid`: the prefix and the uuid's first 17 hex digits."""
    return f"{prefix}-{uuid.replace('-', '').lower()[:17]}"


def by_ec2_id(prefix: str, uuids: list[str]) -> dict[str, str]:
    return {ec2_id(prefix, u): u for u in uuids}
