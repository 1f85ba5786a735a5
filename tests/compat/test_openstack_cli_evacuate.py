"""`openstack server evacuate` with the real client: refused while the server's host is up, then,
its agent stopped and the host forced down as an operator does after fencing it, the server is
rebuilt on the other host with the same id, and the host comes back without it."""

from __future__ import annotations

import subprocess

from tests.compat.test_openstack_cli import OPENSTACK, osc  # noqa: F401  (the client fixture)
from tests.integration.helpers import wait_until
from tests.stack import small_qcow2


def test_evacuate_with_the_real_client(stack, osc):  # noqa: F811
    small_qcow2(osc.workdir / "disk.qcow2")
    osc("image", "create", "--file", "disk.qcow2", "--disk-format", "qcow2",
        "--container-format", "bare", "evac-img")
    server = osc("server", "create", "--image", "evac-img", "--flavor", "m1.tiny", "--nic",
                 "none", "--availability-zone", "nova:compute-a", "--wait", "evac1", parse=True)
    assert server["OS-EXT-SRV-ATTR:host"] == "compute-a"
    env = stack.openstack_env()
    refused = subprocess.run([OPENSTACK, "server", "evacuate", "evac1"], env=env,
                             capture_output=True, text=True, timeout=120, check=False)
    assert refused.returncode != 0
    assert "Compute service of compute-a is still in use" in refused.stderr
    try:
        stack.kill("compute-a")
        osc("--os-compute-api-version", "2.11", "compute", "service", "set", "--down",
            "compute-a", "nova-compute")
        # Not --wait: the client lowercases the status and compares it with "ACTIVE", so it would
        # wait for ever, whatever the cloud does (python-openstackclient's EvacuateServer).
        moved = osc("--os-compute-api-version", "2.29", "server", "evacuate", "--host",
                    "compute-b", "evac1", parse=True)
        assert moved["id"] == server["id"]

        def shown() -> tuple[str, str, str]:
            now = osc("server", "show", "evac1", parse=True)
            return now["status"], now["OS-EXT-SRV-ATTR:host"], now["id"]

        wait_until(lambda: shown() == ("ACTIVE", "compute-b", server["id"]),
                   what="evac1 ACTIVE on compute-b")
        migrations = osc("--os-compute-api-version", "2.59", "server", "migration", "list",
                         "--server", "evac1", parse=True)
        assert [(m["Type"], m["Status"]) for m in migrations] == [
            ("evacuation", "done")]
    finally:
        osc("--os-compute-api-version", "2.11", "compute", "service", "set", "--up",
            "compute-a", "nova-compute")
        stack.restart("compute-a")
        osc("server", "delete", "--wait", "evac1")
        osc("image", "delete", "evac-img")
