"""Volumes end to end (issue 17), on the stack the e2e tests share (tests/e2e/multihost.py: three
simulated compute hosts and the storage host `storage-1`, real qemu guests), through the APIs a user
has: the Block Storage v3 API and Nova's os-volume_attachments and block_device_mapping_v2.

What a user would notice:
- a guest writes a marker to a hot-attached volume; the volume is detached, attached to a second
  guest on another host, and the second guest reads the marker back;
- a server boots from a volume made from the image; deleted with delete_on_termination false, its
  volume stays available and a second server boots from it;
- a guest with a volume attached is live-migrated and still reads and writes it there.

The guests run shell scripts from their user data (the tiny guest runs a `#!` user data in the
background, its output on the serial console). At most three guests at once. Figures (attach,
detach, boot from volume, in-guest throughput against the same file on the storage host) go to
artifacts/multihost/figures.json.
"""

from __future__ import annotations

import base64
import time

import pytest

from tests.e2e.multihost import BOOT_TIMEOUT, MOVE_TIMEOUT, Cloud, V, figure, wait_for_text

pytestmark = pytest.mark.e2e

VOLUME_TIMEOUT = 120.0

# Waits for the volume to appear as vdb, then writes a marker at its start and says so.
WRITER = """#!/bin/sh
while [ ! -b /dev/vdb ]; do sleep 0.2; done
echo "SAW-VDB"
printf 'KUMO-MARK-%s\\n' "$1" | dd of=/dev/vdb bs=512 count=1 conv=sync 2>/dev/null
sync
echo "WROTE-MARK"
"""

# Waits for vdb, then prints its first line for as long as it runs (so a test can watch it across
# a live migration), each line numbered.
READER = """#!/bin/sh
while [ ! -b /dev/vdb ]; do sleep 0.2; done
n=0
while :; do
    n=$((n + 1))
    echo "READ $n $(head -c 64 /dev/vdb | head -n 1)"
    sleep 1
done
"""


def _user_data(script: str, marker: str = "") -> str:
    text = script.replace('"$1"', f'"{marker}"')
    return base64.b64encode(text.encode()).decode()


class Volumes:
    """The Block Storage API v3 as the admin of the shared stack uses it."""

    def __init__(self, cloud: Cloud) -> None:
        self.cloud = cloud
        projects = cloud.api.get("/identity/v3/auth/projects").json()["projects"]
        project = next(p for p in projects if p["name"] == "admin")
        self.base = f"/volume/v3/{project['id']}"
        self.headers = {"OpenStack-API-Version": "volume 3.27"}

    def create(self, size: int, **fields: object) -> str:
        response = self.cloud.api.post(f"{self.base}/volumes", {"volume": {"size": size, **fields}},
                                       headers=self.headers)
        assert response.status_code == 202, response.text
        return response.json()["volume"]["id"]

    def show(self, volume_id: str) -> dict:
        response = self.cloud.api.get(f"{self.base}/volumes/{volume_id}", headers=self.headers)
        assert response.status_code == 200, response.text
        return response.json()["volume"]

    def wait(self, volume_id: str, status: str, timeout: float = VOLUME_TIMEOUT) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            volume = self.show(volume_id)
            if volume["status"] == status:
                return volume
            assert not volume["status"].startswith("error"), volume
            assert time.monotonic() < deadline, f"volume {volume_id} still {volume['status']}"
            time.sleep(0.3)

    def delete(self, volume_id: str) -> None:
        response = self.cloud.api.delete(f"{self.base}/volumes/{volume_id}", headers=self.headers)
        assert response.status_code == 202, response.text
        deadline = time.monotonic() + VOLUME_TIMEOUT
        while self.cloud.api.get(f"{self.base}/volumes/{volume_id}",
                                 headers=self.headers).status_code != 404:
            assert time.monotonic() < deadline, f"volume {volume_id} was never deleted"
            time.sleep(0.3)


@pytest.fixture(scope="module")
def cloud(multihost: Cloud) -> Cloud:
    return multihost


@pytest.fixture(scope="module")
def volumes(cloud: Cloud) -> Volumes:
    return Volumes(cloud)


def _boot_on(cloud: Cloud, name: str, host: str, user_data: str = "", **server: object) -> str:
    body: dict = {"name": name, "flavorRef": "1", "networks": "none",
                  "availability_zone": f"nova:{host}", **server}
    body.setdefault("imageRef", cloud.image)
    if user_data:
        body["user_data"] = user_data
    created = cloud.api.post(f"{V}/servers", {"server": body})
    assert created.status_code == 202, created.text
    return created.json()["server"]["id"]


def _attach(cloud: Cloud, server_id: str, volume_id: str) -> float:
    began = time.monotonic()
    response = cloud.api.post(f"{V}/servers/{server_id}/os-volume_attachments",
                              {"volumeAttachment": {"volumeId": volume_id}})
    assert response.status_code == 200, response.text
    assert response.json()["volumeAttachment"]["device"] == "/dev/vdb"
    return began


def _detach(cloud: Cloud, server_id: str, volume_id: str) -> float:
    began = time.monotonic()
    response = cloud.api.delete(f"{V}/servers/{server_id}/os-volume_attachments/{volume_id}")
    assert response.status_code == 202, response.text
    return began


def test_a_marker_written_on_one_host_is_read_back_on_another(cloud: Cloud,
                                                            volumes: Volumes) -> None:
    volume_id = volumes.create(1, name="marker-vol")
    volumes.wait(volume_id, "available")
    writer = _boot_on(cloud, "vol-writer", "compute-1", _user_data(WRITER, "e2e-42"))
    reader = _boot_on(cloud, "vol-reader", "compute-2", _user_data(READER))
    cloud.active(writer, reader)
    wait_for_text(cloud.console_log("compute-1", writer), "KUMO TINY GUEST")

    began = _attach(cloud, writer, volume_id)
    volume = volumes.wait(volume_id, "in-use")
    figure("volume_attach_to_in_use_s", round(time.monotonic() - began, 2))
    assert volume["attachments"][0]["server_id"] == writer
    wait_for_text(cloud.console_log("compute-1", writer), "WROTE-MARK")

    # Deleting a volume in use is refused, and changes nothing.
    refused = cloud.api.delete(f"{volumes.base}/volumes/{volume_id}", headers=volumes.headers)
    assert refused.status_code == 400, refused.text
    assert volumes.show(volume_id)["status"] == "in-use"

    began = _detach(cloud, writer, volume_id)
    volumes.wait(volume_id, "available")
    figure("volume_detach_to_available_s", round(time.monotonic() - began, 2))

    _attach(cloud, reader, volume_id)
    volumes.wait(volume_id, "in-use")
    text = wait_for_text(cloud.console_log("compute-2", reader), "KUMO-MARK-e2e-42")
    assert "READ" in text
    _detach(cloud, reader, volume_id)
    volumes.wait(volume_id, "available")
    cloud.delete(writer, reader)
    volumes.delete(volume_id)


def test_a_boot_volume_outlives_its_server_and_boots_another(cloud: Cloud,
                                                            volumes: Volumes) -> None:
    mapping = [{"boot_index": 0, "uuid": cloud.image, "source_type": "image",
                "destination_type": "volume", "volume_size": 1,
                "delete_on_termination": False}]
    began = time.monotonic()
    first = _boot_on(cloud, "bfv-1", "compute-3", imageRef="", block_device_mapping_v2=mapping)
    cloud.active(first)
    wait_for_text(cloud.console_log("compute-3", first), f"instance={first}", BOOT_TIMEOUT)
    figure("boot_from_new_volume_to_banner_s", round(time.monotonic() - began, 1))
    attached = cloud.show(first)["os-extended-volumes:volumes_attached"]
    assert len(attached) == 1
    volume_id = attached[0]["id"]
    volume = volumes.show(volume_id)
    assert volume["bootable"] == "true" and volume["status"] == "in-use"
    # The guest's root disk is the volume: nothing of it lives in the host's instance directory.
    assert not (cloud.hosts["compute-3"].dir / "instances" / first / "disk").exists()

    cloud.delete(first)
    volumes.wait(volume_id, "available")

    began = time.monotonic()
    second = _boot_on(cloud, "bfv-2", "compute-1", imageRef="", block_device_mapping_v2=[
        {"boot_index": 0, "uuid": volume_id, "source_type": "volume",
         "destination_type": "volume", "delete_on_termination": True}])
    cloud.active(second)
    wait_for_text(cloud.console_log("compute-1", second), f"instance={second}", BOOT_TIMEOUT)
    figure("boot_from_existing_volume_to_banner_s", round(time.monotonic() - began, 1))
    cloud.delete(second)
    # delete_on_termination: the volume goes with the server.
    deadline = time.monotonic() + VOLUME_TIMEOUT
    while cloud.api.get(f"{volumes.base}/volumes/{volume_id}",
                        headers=volumes.headers).status_code != 404:
        assert time.monotonic() < deadline, "the boot volume outlived a delete_on_termination"
        time.sleep(0.3)


def test_a_live_migration_keeps_the_guest_reading_its_volume(cloud: Cloud,
                                                             volumes: Volumes) -> None:
    volume_id = volumes.create(1, name="migrating-vol")
    volumes.wait(volume_id, "available")
    writer = _boot_on(cloud, "vol-seed", "compute-2", _user_data(WRITER, "moved"))
    guest = _boot_on(cloud, "vol-mover", "compute-2", _user_data(READER))
    cloud.active(writer, guest)
    _attach(cloud, writer, volume_id)
    wait_for_text(cloud.console_log("compute-2", writer), "WROTE-MARK")
    _detach(cloud, writer, volume_id)
    volumes.wait(volume_id, "available")
    cloud.delete(writer)

    _attach(cloud, guest, volume_id)
    volumes.wait(volume_id, "in-use")
    wait_for_text(cloud.console_log("compute-2", guest), "KUMO-MARK-moved")
    cloud.action(guest, {"os-migrateLive": {"host": "compute-3", "block_migration": "auto"}})
    server = cloud.settled(guest, MOVE_TIMEOUT)
    assert server["status"] == "ACTIVE" and server["OS-EXT-SRV-ATTR:host"] == "compute-3", server
    # Read on the new host: the counter goes on there and still finds the marker.
    log = cloud.console_log("compute-3", guest)
    before = log.read_text(errors="replace").count("KUMO-MARK-moved") if log.exists() else 0
    deadline = time.monotonic() + 30
    while True:
        text = log.read_text(errors="replace") if log.exists() else ""
        if text.count("KUMO-MARK-moved") > before + 2:
            break
        assert time.monotonic() < deadline, "the migrated guest stopped reading its volume"
        time.sleep(0.3)
    volume = volumes.show(volume_id)
    assert volume["status"] == "in-use"
    assert volume["attachments"][0]["host_name"] == "compute-3"
    cloud.delete(guest)
    volumes.wait(volume_id, "available")
    volumes.delete(volume_id)
