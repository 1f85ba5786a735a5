"""The config drive, written with pycdlib and read back with it: the label a guest looks for and
the OpenStack files it reads."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable
from pathlib import Path

import pycdlib
import pytest

from compute_agent import config_drive
from compute_agent import messages as msg

UUID = "6f1d3c0e-2b7a-4c1e-9a8f-0d5b1e2c3a4f"


def request(**overrides: object) -> msg.SpawnRequest:
    fields: dict[str, object] = {
        "request_id": "req-1",
        "instance_uuid": UUID,
        "name": "web one",
        "hostname": "web-1",
        "vcpus": 1,
        "memory_mb": 128,
        "root_gb": 1,
        "project_id": "proj-alpha",
        "availability_zone": "zone-a",
        "launch_index": 2,
        "metadata": {"role": "web"},
        "networks": [
            msg.NetworkInfo(
                network_id="net-1", network_name="private", port_id="port-0123456789",
                mac_address="fa:16:3e:00:00:01", ip_address="10.0.0.5",
            )
        ],
    }
    fields.update(overrides)
    return msg.SpawnRequest(**fields)  # type: ignore[arg-type]


class Drive:
    def __init__(self, path: Path) -> None:
        self.iso = pycdlib.PyCdlib()
        self.iso.open(str(path))

    def label(self) -> str:
        return self.iso.pvd.volume_identifier.decode().strip()

    def names(self) -> set[str]:
        found = set()
        for directory, _, files in self.iso.walk(rr_path="/"):
            found.update(f"{directory.rstrip('/')}/{name}" for name in files)
        return found

    def read(self, path: str) -> bytes:
        out = io.BytesIO()
        self.iso.get_file_from_iso_fp(out, rr_path=path)
        return out.getvalue()

    def json(self, path: str) -> dict:
        return json.loads(self.read(path))


DriveFactory = Callable[..., Drive]


@pytest.fixture
def build(tmp_path: Path) -> DriveFactory:
    def make(**overrides: object) -> Drive:
        target = tmp_path / "disk.config"
        config_drive.build(target, request(**overrides))
        return Drive(target)

    return make


def test_the_drive_is_labelled_config_2(build: DriveFactory) -> None:
    assert build().label() == "config-2"


def test_meta_data_says_who_the_instance_is(build: DriveFactory) -> None:
    meta = build().json("/openstack/latest/meta_data.json")
    assert meta["uuid"] == UUID
    assert meta["name"] == "web one"
    assert meta["hostname"] == "web-1"
    assert meta["availability_zone"] == "zone-a"
    assert meta["launch_index"] == 2
    assert meta["project_id"] == "proj-alpha"
    assert meta["meta"] == {"role": "web"}
    assert "public_keys" not in meta


def test_the_key_pair_is_published_under_its_name(build: DriveFactory) -> None:
    meta = build(key_name="alice-key", key_data="ssh-ed25519 AAAA alice").json(
        "/openstack/latest/meta_data.json"
    )
    assert meta["public_keys"] == {"alice-key": "ssh-ed25519 AAAA alice"}


def test_user_data_is_decoded_and_present_only_when_given(build: DriveFactory) -> None:
    assert "/openstack/latest/user_data" not in build().names()
    encoded = base64.b64encode(b"#cloud-config\nhostname: x\n").decode()
    drive = build(user_data=encoded)
    assert drive.read("/openstack/latest/user_data") == b"#cloud-config\nhostname: x\n"


def test_network_data_has_a_link_and_a_network_per_port(build: DriveFactory) -> None:
    data = build().json("/openstack/latest/network_data.json")
    [link] = data["links"]
    assert link["ethernet_mac_address"] == "fa:16:3e:00:00:01"
    assert link["vif_id"] == "port-0123456789"
    [network] = data["networks"]
    assert network["link"] == link["id"]
    assert network["ip_address"] == "10.0.0.5"
    assert network["network_id"] == "net-1"


def test_the_drive_holds_exactly_the_openstack_files(build: DriveFactory) -> None:
    assert build(user_data="aGk=").names() == {
        "/openstack/latest/meta_data.json",
        "/openstack/latest/network_data.json",
        "/openstack/latest/user_data",
    }


def test_hostile_strings_stay_data(build: DriveFactory) -> None:
    hostile = '"; rm -rf / #\n</x>\u202e'
    meta = build(name=hostile, hostname=hostile).json("/openstack/latest/meta_data.json")
    assert meta["name"] == hostile
    assert meta["hostname"] == hostile


def test_the_drive_replaces_an_old_one_whole(tmp_path: Path) -> None:
    target = tmp_path / "disk.config"
    target.write_bytes(b"old")
    config_drive.build(target, request())
    assert Drive(target).label() == "config-2"
    assert [p.name for p in tmp_path.iterdir()] == ["disk.config"]
