"""No path the agent hands to qemu-img or libvirt may resolve outside its own directories, whatever
names a request carries or whatever symlinks someone planted in the tree."""

from __future__ import annotations

from pathlib import Path

import pytest

from compute_agent.instance_files import InstanceFiles, UnsafePath, contained

UUID = "6f1d3c0e-2b7a-4c1e-9a8f-0d5b1e2c3a4f"


@pytest.fixture
def files(tmp_path: Path) -> InstanceFiles:
    files = InstanceFiles(tmp_path / "instances")
    files.ensure_dirs()
    return files


@pytest.mark.parametrize(
    "name", ["../outside", "../../etc/passwd", "/etc/passwd", "a/../../x", ""]
)
def test_a_path_outside_the_root_is_refused(tmp_path: Path, name: str) -> None:
    root = tmp_path / "root"
    root.mkdir()
    with pytest.raises(UnsafePath):
        contained(root / name if name else root, root)


def test_a_path_inside_the_root_is_returned_resolved(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    assert contained(root / "a" / ".." / "a" / "disk", root) == (root / "a" / "disk").resolve()


@pytest.mark.parametrize("bad_uuid", ["..", "../x", "not-a-uuid", f"{UUID}/../..", ""])
def test_an_instance_uuid_that_is_not_a_uuid_never_becomes_a_path(
    files: InstanceFiles, bad_uuid: str
) -> None:
    with pytest.raises(ValueError):
        files.instance_dir(bad_uuid)


def test_an_instance_directory_symlinked_elsewhere_is_refused(
    files: InstanceFiles, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (files.root / UUID).symlink_to(elsewhere)
    with pytest.raises(UnsafePath):
        files.disk(UUID)


def test_an_instance_file_symlinked_out_of_its_directory_is_refused(
    files: InstanceFiles, tmp_path: Path
) -> None:
    victim = tmp_path / "victim"
    victim.write_text("do not overwrite")
    directory = files.make_instance_dir(UUID)
    (directory / "disk").symlink_to(victim)
    with pytest.raises(UnsafePath):
        files.disk(UUID)
    with pytest.raises(UnsafePath):
        files.path(UUID, "../" + UUID + "/../../victim")


def test_removing_a_symlinked_instance_directory_removes_only_the_link(
    files: InstanceFiles, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "precious").write_text("keep me")
    (files.root / UUID).symlink_to(elsewhere)
    files.remove_instance_dir(UUID)
    assert not (files.root / UUID).exists()
    assert (elsewhere / "precious").read_text() == "keep me"


def test_removing_an_instance_directory_removes_all_its_files(files: InstanceFiles) -> None:
    directory = files.make_instance_dir(UUID)
    (directory / "disk").write_bytes(b"x")
    (directory / "console.log").write_text("boot")
    files.remove_instance_dir(UUID)
    assert not directory.exists()
    files.remove_instance_dir(UUID)  # a second removal is fine


def test_the_bases_in_use_are_read_from_each_instance_directory(files: InstanceFiles) -> None:
    other = "11111111-2222-4333-8444-555555555555"
    files.make_instance_dir(UUID)
    files.make_instance_dir(other)
    files.record_base(UUID, files.base_dir / "img-a")
    files.record_base(other, files.base_dir / "img-b")
    assert files.bases_in_use() == {"img-a", "img-b"}


def test_a_disk_that_arrived_for_a_migration_goes_with_the_instance(files: InstanceFiles) -> None:
    files.make_instance_dir(UUID)
    files.incoming_dir.mkdir()
    arrived = files.incoming_disk(UUID)
    assert arrived == (files.incoming_dir / f"{UUID}.disk").resolve()
    arrived.write_bytes(b"qcow2")
    files.remove_instance_dir(UUID)
    assert not arrived.exists() and not files.instance_dir(UUID).exists()


def test_the_vnc_link_is_made_corrected_and_never_replaces_a_directory(
    files: InstanceFiles, tmp_path: Path
) -> None:
    assert files.ensure_vnc_link(tmp_path / "vnc-a") == files.vnc_link
    assert files.vnc_link.readlink() == tmp_path / "vnc-a"
    files.ensure_vnc_link(tmp_path / "vnc-b")
    assert files.vnc_link.readlink() == tmp_path / "vnc-b"
    files.vnc_link.unlink()
    files.vnc_link.mkdir()
    with pytest.raises(UnsafePath):
        files.ensure_vnc_link(tmp_path / "vnc-a")


def test_the_migration_directories_are_not_instances(files: InstanceFiles, tmp_path: Path) -> None:
    files.incoming_dir.mkdir()
    files.ensure_vnc_link(tmp_path)
    assert files.bases_in_use() == set()
