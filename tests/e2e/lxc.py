"""The container stack the LXC e2e modules share (issue 19): one qemu host (compute-1) and one
container host (lxc-1, libvirt's LXC driver in its own namespaces), the tiny VM and the tiny
container images uploaded, started once per test session (conftest.py registers `lxc_cloud`),
and the calls those modules make through the compute API a user has.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import release_after_last_user
from tests.stack import ROOT, ApiClient, Stack

V = "/compute/v2.1"
VM_IMAGE = ROOT / "var" / "guest" / "kumo-tiny.qcow2"
CT_IMAGE = ROOT / "var" / "guest" / "kumo-tiny-ct.tar.gz"
TIMEOUT = 180.0
FIGURES: dict[str, float] = {}


@pytest.fixture(scope="session")
def lxc_cloud() -> Iterator[tuple[Stack, ApiClient, str, str]]:
    if os.geteuid() != 0:
        pytest.skip("simulated hosts need root (network and mount namespaces)")
    pytest.importorskip("libvirt")
    if not Path("/usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_lxc.so").exists():
        pytest.skip("libvirt's LXC driver is not installed (scripts/setup.sh --test installs it)")
    for script, image in (("build_image.sh", VM_IMAGE), ("build_ct_image.sh", CT_IMAGE)):
        built = subprocess.run([str(ROOT / "scripts" / script), str(image)], capture_output=True,
                               text=True, timeout=600, check=False)
        assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    stack = Stack("lxc", agents=[], simulated_hosts=1, container_hosts=1, schedulers=1)
    with contextlib.ExitStack() as running:
        running.enter_context(stack.running())
        running.callback(lambda: print(
            "\n[lxc figures]\n" + "\n".join(f"  {k}: {v}" for k, v in FIGURES.items())))
        # Stopped after the last LXC test rather than at the session's end, so that its hosts do
        # not share the two cores with every later test.
        release_after_last_user("lxc_cloud", running.close)
        api = stack.client(version="2.60")
        vm = api.upload_image("kumo-tiny", VM_IMAGE.read_bytes())
        ct = api.upload_image("kumo-tiny-ct", CT_IMAGE.read_bytes(), disk_format="raw",
                              container_format="compressed", hypervisor_type="lxc")
        yield stack, api, vm, ct


def boot(api: ApiClient, name: str, image: str) -> str:
    created = api.post(f"{V}/servers", {"server": {
        "name": name, "imageRef": image, "flavorRef": "1", "networks": "none"}})
    assert created.status_code == 202, created.text
    return created.json()["server"]["id"]


def console(api: ApiClient, server_id: str) -> str:
    answer = api.post(f"{V}/servers/{server_id}/action", {"os-getConsoleOutput": {}})
    assert answer.status_code == 200, answer.text
    return answer.json()["output"]


def wait_console(api: ApiClient, server_id: str, pattern: str, count: int = 1) -> str:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        text = console(api, server_id)
        if len(re.findall(pattern, text)) >= count:
            return text
        time.sleep(0.2)
    raise AssertionError(f"{server_id} never printed {pattern!r} {count}×: {text[-500:]!r}")


def action(api: ApiClient, server_id: str, body: dict) -> None:
    answer = api.post(f"{V}/servers/{server_id}/action", body)
    assert answer.status_code == 202, answer.text


def rss_mib(program: str, instance: str) -> float:
    """The resident memory of the process of `program` that names `instance` on its command line
    and of every process under it (a container's init and its children), in MiB."""
    parents: dict[int, int] = {}
    root = None
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            words = (entry / "cmdline").read_bytes().split(b"\0")
            parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if program.encode() in words[0] and any(instance.encode() in w for w in words):
                root = int(entry.name)
    assert root is not None, f"no {program} process of {instance}"
    tree, grew = {root}, True
    while grew:
        more = {pid for pid, parent in parents.items() if parent in tree} - tree
        tree |= more
        grew = bool(more)
    kib = 0
    for pid in tree:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    kib += int(line.split()[1])
    return round(kib / 1024, 1)


def host_of(api: ApiClient, server_id: str) -> str:
    return api.get(f"{V}/servers/{server_id}").json()["server"]["OS-EXT-SRV-ATTR:host"]


def set_enabled(api: ApiClient, host: str, enabled: bool) -> None:
    (service,) = api.get(f"{V}/os-services?binary=nova-compute&host={host}").json()["services"]
    body = {"status": "enabled"} if enabled else {"status": "disabled", "disabled_reason": "test"}
    assert api.put(f"{V}/os-services/{service['id']}", body).status_code == 200


def lxc_host(stack: Stack):
    return next(h for h in stack.hosts if h.name == "lxc-1")


def in_host_mounts(stack: Stack, script: str) -> str:
    """Run `script` in lxc-1's mount namespace (its libvirtd's: the cgroup v1 hierarchy LXC
    uses is mounted there only)."""
    pid = lxc_host(stack).libvirtd_pid()
    assert pid, "lxc-1's libvirtd is not running"
    done = subprocess.run(["nsenter", "-t", str(pid), "-m", "--", "sh", "-c", script],
                          capture_output=True, text=True, timeout=20, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def cgroup_value(stack: Stack, controller: str, server_id: str, name: str) -> str:
    return in_host_mounts(
        stack, f"cat /sys/fs/cgroup/{controller}/machine/lxc-*-{server_id}.libvirt-lxc/{name}")
