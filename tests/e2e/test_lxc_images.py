"""Images of containers (issue 19) on the shared container stack (tests/e2e/lxc.py): a container's
snapshot is a tar of its root filesystem as it is, with the changes made in it, which boots as a
container again; a rebuild gives a container a fresh root filesystem of the new image; a backup
is the same tar, and a shelved container comes back from its tar with its changes; nothing is
left on the host once all is deleted.

The changes are made inside the running container (nsenter into its init's namespaces and root,
as a process of its own would): a note written, a file of the image deleted (an overlay whiteout
in its upper directory) and its init wrapped to print the note, so a container booted from the
snapshot shows on its console that it carries them.
"""

from __future__ import annotations

import io
import re
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from tests.e2e.lxc import FIGURES, TIMEOUT, V, action, boot, console, host_of, wait_console
from tests.stack import ApiClient

libvirt = pytest.importorskip("libvirt")

NOTE = "written-inside-ct-snap"
# The image's init, wrapped: the note on the console first.
WRAPPED_INIT = '#!/bin/sh\necho "kumo-note: $(cat /etc/kumo-note)"\nexec /sbin/init.orig\n'


@pytest.fixture
def cloud(lxc_cloud):
    return lxc_cloud


def _init_pid(instance: str) -> int:
    """The container's init: the child of the libvirt_lxc process that runs `instance`."""
    lxc = None
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            words = (entry / "cmdline").read_bytes().split(b"\0")
            parents[int(entry.name)] = int(
                (entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        if b"libvirt_lxc" in words[0] and any(instance.encode() in w for w in words):
            lxc = int(entry.name)
    assert lxc is not None, f"no libvirt_lxc process of {instance}"
    (init,) = [pid for pid, parent in parents.items() if parent == lxc]
    return init


def in_container(instance: str, script: str) -> subprocess.CompletedProcess:
    """Run `script` with the container's own sh, in its namespaces and root, as its init's
    sibling would."""
    return subprocess.run(
        ["nsenter", "-t", str(_init_pid(instance)), "-m", "-u", "-i", "-p", "-r", "-w", "--",
         "/bin/sh", "-c", script], capture_output=True, text=True, timeout=30, check=False)


def change_inside(instance: str) -> None:
    """The note written, /etc/group deleted and init wrapped, by a process in the container."""
    changed = in_container(instance, (
        f"echo {NOTE} > /etc/kumo-note && rm /etc/group && mv /sbin/init /sbin/init.orig"
        f" && printf '%s' '{WRAPPED_INIT}' > /sbin/init && chmod 755 /sbin/init"))
    assert changed.returncode == 0, changed.stderr


def image_of(api: ApiClient, server: str, body: dict) -> tuple[str, float]:
    """Ask for an image of `server` (createImage or createBackup); its id and the seconds until
    it is active and the server's task is over."""
    started = time.monotonic()
    answer = api.post(f"{V}/servers/{server}/action", body)
    assert answer.status_code == 202, answer.text
    image_id = answer.json()["image_id"]
    deadline = started + TIMEOUT
    while (image := api.get(f"/image/v2/images/{image_id}").json())["status"] != "active":
        assert image["status"] in ("queued", "saving"), image
        assert time.monotonic() < deadline, f"image {image_id} never active: {image['status']}"
        time.sleep(0.1)
    assert api.wait_for(server, {"ACTIVE"}, timeout=TIMEOUT)["status"] == "ACTIVE"
    return image_id, time.monotonic() - started


def test_a_containers_snapshot_boots_with_its_changes_and_a_rebuild_starts_afresh(cloud):
    stack, api, _, ct_image = cloud
    host = next(h for h in stack.hosts if h.name == "lxc-1")
    ct = boot(api, "ct-snap", ct_image)
    copy = None
    images: list[str] = []
    try:
        assert api.wait_for(ct, {"ACTIVE", "ERROR"}, timeout=TIMEOUT)["status"] == "ACTIVE"
        wait_console(api, ct, rf"kumo-tiny-ct: ct-snap {ct} up")
        change_inside(ct)

        snapshot, seconds = image_of(api, ct, {"createImage": {"name": "ct-snap-image"}})
        images.append(snapshot)
        FIGURES["container snapshot, createImage to image active (s)"] = round(seconds, 2)
        conn = libvirt.open(host.uri)
        try:  # unfrozen again once the tar is taken
            state = conn.lookupByUUIDString(ct).state()[0]
        finally:
            conn.close()
        assert state == libvirt.VIR_DOMAIN_RUNNING
        image = api.get(f"/image/v2/images/{snapshot}").json()
        assert (image["disk_format"], image["container_format"], image["hypervisor_type"]) == (
            "raw", "compressed", "lxc")
        assert (image["image_type"], image["instance_uuid"]) == ("snapshot", ct)
        FIGURES["container snapshot image size (KiB)"] = round(image["size"] / 1024, 1)
        data = api.get(f"/image/v2/images/{snapshot}/file").content
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            members = {m.name: m for m in tar.getmembers()}
            note = tar.extractfile(members["./etc/kumo-note"]).read().decode()
        assert note == f"{NOTE}\n"
        assert "./sbin/init.orig" in members and "./bin/busybox" in members
        assert "./etc/group" not in members  # deleted in the container: no whiteout either
        assert not [m.name for m in members.values() if m.ischr() or m.isblk()]

        started = time.monotonic()
        copy = boot(api, "ct-copy", snapshot)
        assert api.wait_for(copy, {"ACTIVE", "ERROR"}, timeout=TIMEOUT)["status"] == "ACTIVE"
        assert host_of(api, copy) == "lxc-1"
        text = wait_console(api, copy, rf"kumo-tiny-ct: ct-copy {copy} up")
        FIGURES["container from its snapshot, create to banner (s)"] = round(
            time.monotonic() - started, 2)
        assert f"kumo-note: {NOTE}" in text

        # Rebuilt from the original image: a fresh overlay over its tree, the snapshot's changes
        # and the container's own since its boot gone.
        made = in_container(copy, "echo since-boot > /etc/kumo-copy-change")
        assert made.returncode == 0, made.stderr
        started = time.monotonic()
        action(api, copy, {"rebuild": {"imageRef": ct_image}})
        assert api.wait_for(copy, {"ACTIVE", "ERROR"}, timeout=TIMEOUT)["status"] == "ACTIVE"
        text = wait_console(api, copy, rf"kumo-tiny-ct: ct-copy {copy} up")
        FIGURES["container rebuild to banner (s)"] = round(time.monotonic() - started, 2)
        assert "kumo-note" not in text, text
        assert len(re.findall(rf"kumo-tiny-ct: ct-copy {copy} up", text)) == 1, text
        server = api.get(f"{V}/servers/{copy}").json()["server"]
        assert server["image"]["id"] == ct_image
        gone = in_container(copy, "test ! -e /etc/kumo-note && test ! -e /sbin/init.orig"
                                  " && test ! -e /etc/kumo-copy-change && test -e /etc/group"
                                  " && echo ok")
        assert gone.stdout.strip() == "ok", (gone.stdout, gone.stderr)

        backup, seconds = image_of(api, ct, {"createBackup": {
            "name": "ct-backup", "backup_type": "daily", "rotation": 1}})
        images.append(backup)
        FIGURES["container backup, createBackup to image active (s)"] = round(seconds, 2)
        image = api.get(f"/image/v2/images/{backup}").json()
        assert (image["disk_format"], image["hypervisor_type"], image["image_type"]) == (
            "raw", "lxc", "backup")
        assert "kumo-tiny-ct: stopping" not in console(api, ct)  # it ran on throughout
    finally:
        for server in (ct, copy):
            if server:
                api.delete(f"{V}/servers/{server}")
        for server in (ct, copy):
            if server:
                api.wait_gone(server, timeout=TIMEOUT)
        for image_id in images:
            api.delete(f"/image/v2/images/{image_id}")

    conn = libvirt.open(host.uri)
    try:
        assert conn.listAllDomains() == []
    finally:
        conn.close()
    mounts = Path(f"/proc/{host.libvirtd_pid()}/mounts").read_text()
    for server in (ct, copy):
        assert not (host.dir / "instances" / server).exists()
        assert server not in mounts
    assert list((host.dir / "instances" / "_snapshots").glob("*")) == []


def test_a_shelved_container_comes_back_with_its_changes_and_its_shelve_image_goes(cloud):
    stack, api, _, ct_image = cloud
    host = next(h for h in stack.hosts if h.name == "lxc-1")
    ct = boot(api, "ct-shelf", ct_image)
    try:
        assert api.wait_for(ct, {"ACTIVE", "ERROR"}, timeout=TIMEOUT)["status"] == "ACTIVE"
        wait_console(api, ct, rf"kumo-tiny-ct: ct-shelf {ct} up")
        change_inside(ct)
        started = time.monotonic()
        action(api, ct, {"shelve": None})
        server = api.wait_for(ct, {"SHELVED_OFFLOADED", "ERROR"}, timeout=TIMEOUT)
        assert server["status"] == "SHELVED_OFFLOADED", server.get("fault")
        FIGURES["container shelve to SHELVED_OFFLOADED (s)"] = round(
            time.monotonic() - started, 2)
        assert server["OS-EXT-SRV-ATTR:host"] is None
        assert not (host.dir / "instances" / ct).exists()
        (shelved,) = api.get("/image/v2/images?name=ct-shelf-shelved").json()["images"]
        assert (shelved["disk_format"], shelved["hypervisor_type"]) == ("raw", "lxc")

        started = time.monotonic()
        action(api, ct, {"unshelve": None})
        assert api.wait_for(ct, {"ACTIVE", "ERROR"}, timeout=TIMEOUT)["status"] == "ACTIVE"
        assert host_of(api, ct) == "lxc-1"
        text = wait_console(api, ct, rf"kumo-tiny-ct: ct-shelf {ct} up")
        FIGURES["container unshelve to banner (s)"] = round(time.monotonic() - started, 2)
        assert f"kumo-note: {NOTE}" in text  # it booted from its own tar, not its image
        assert api.get(f"/image/v2/images/{shelved['id']}").status_code == 404

        # Resized afterwards, it is defined again over the same tree: its changes stay, and its
        # base is still its shelve image's tree (were it the original image's, the cache sweep
        # would remove the tree it runs on, and the next mount would drop its changes).
        marker = host.dir / "instances" / ct / "base"
        assert marker.read_text().startswith(f"{shelved['id']}-")
        flavor = api.post(f"{V}/flavors", {"flavor": {"name": "ct-shelf-bigger", "ram": 192,
                                                       "vcpus": 1, "disk": 1}})
        assert flavor.status_code == 200, flavor.text
        flavor_id = flavor.json()["flavor"]["id"]
        try:
            action(api, ct, {"resize": {"flavorRef": flavor_id}})
            found = api.wait_for(ct, {"VERIFY_RESIZE", "ERROR"}, timeout=TIMEOUT)
            assert found["status"] == "VERIFY_RESIZE", found.get("fault")
            text = wait_console(api, ct, rf"kumo-tiny-ct: ct-shelf {ct} up", count=2)
            assert text.count(f"kumo-note: {NOTE}") == 2
            assert marker.read_text().startswith(f"{shelved['id']}-")
            assert api.post(f"{V}/servers/{ct}/action",
                            {"confirmResize": None}).status_code == 204
        finally:
            api.delete(f"{V}/flavors/{flavor_id}")
    finally:
        api.delete(f"{V}/servers/{ct}")
        api.wait_gone(ct, timeout=TIMEOUT)
    assert not (host.dir / "instances" / ct).exists()
    assert ct not in Path(f"/proc/{host.libvirtd_pid()}/mounts").read_text()
