"""`openstack server show --diagnostics` with the real client: the guest's counters as its host
reported them (the SDK asks at 2.48), moving between two calls; a stopped server is refused."""

from __future__ import annotations

import json
import subprocess

from tests.compat.test_openstack_cli import OPENSTACK, osc  # noqa: F401  (the client fixture)
from tests.integration.helpers import wait_until
from tests.stack import small_qcow2


def test_server_show_diagnostics_with_the_real_client(stack, osc):  # noqa: F811
    small_qcow2(osc.workdir / "disk.qcow2")
    osc("image", "create", "--file", "disk.qcow2", "--disk-format", "qcow2",
        "--container-format", "bare", "diag-img")
    osc("server", "create", "--image", "diag-img", "--flavor", "m1.tiny", "--nic", "none",
        "--wait", "diag1")
    env = stack.openstack_env()

    def show() -> subprocess.CompletedProcess:
        return subprocess.run([OPENSTACK, "server", "show", "--diagnostics", "diag1", "-f", "json"],
                              cwd=osc.workdir, env=env, capture_output=True, text=True,
                              timeout=120, check=False)

    try:
        first = wait_until(lambda: (done := show()).returncode == 0 and json.loads(done.stdout),
                           timeout=60, what="diagnostics of diag1")
        assert (first["driver"], first["state"], first["num_cpus"]) == ("libvirt", "running", 1)
        assert first["memory_details"]["maximum"] == 128
        time0 = first["cpu_details"][0]["time"]
        wait_until(lambda: json.loads(show().stdout)["cpu_details"][0]["time"] > time0,
                   timeout=30, what="diag1's CPU time to grow")

        osc("server", "stop", "diag1")
        wait_until(lambda: osc("server", "show", "diag1", parse=True)["status"] == "SHUTOFF",
                   what="diag1 SHUTOFF")
        refused = show()
        assert refused.returncode != 0
        assert "vm_state stopped" in refused.stderr
    finally:
        osc("server", "delete", "--wait", "diag1")
        osc("image", "delete", "diag-img")
