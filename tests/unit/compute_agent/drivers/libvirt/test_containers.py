"""A container host's driver: the URI says so, and what a container cannot do is refused by name
before libvirt is even asked."""

from __future__ import annotations

import pytest

from compute_agent import messages as msg
from compute_agent.drivers.base import DriverError
from compute_agent.drivers.libvirt.connection import default_domain_type
from compute_agent.drivers.libvirt.driver import LibvirtDriver

UUID = "11111111-2222-4333-8444-555555555555"


def test_an_lxc_uri_is_a_container_host_and_a_qemu_uri_is_not(tmp_path):
    assert default_domain_type("lxc:///system?socket=/tmp/x") == "lxc"
    assert LibvirtDriver("lxc:///system", instances_dir=tmp_path).is_container
    assert not LibvirtDriver("qemu:///system", instances_dir=tmp_path).is_container


@pytest.mark.parametrize(("what", "call"), [
    ("rescue", lambda d: d.rescue(msg.RescueRequest(request_id="r", instance_uuid=UUID,
                                                    image=msg.ImageRef(id="i")))),
    ("live migration", lambda d: d.live_migrate(UUID, "lxc:///", on_progress=print)),
    ("migration", lambda d: d.migrate_disk(UUID, "lxc:///", stop_timeout=1)),
])
def test_what_a_container_cannot_do_is_refused_by_name(tmp_path, what, call):
    # No libvirtd answers at this URI: the refusal comes first.
    driver = LibvirtDriver("lxc:///system?socket=/nonexistent", instances_dir=tmp_path)
    with pytest.raises(DriverError, match=f"{what} is not supported for containers"):
        call(driver)


def test_a_vms_start_runs_none_of_the_container_hooks(tmp_path, spawn_request, monkeypatch):
    """A VM's console is logged by qemu itself: a second copier of its pty would write every
    line twice (the e2e live-migration tick test caught it), and its taps need no renaming."""
    import subprocess

    started: list[object] = []
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: started.append(a))
    driver = LibvirtDriver("test:///default", instances_dir=tmp_path)
    monkeypatch.setattr(driver, "_name_veths", lambda domain: started.append(domain))
    request = spawn_request()
    driver.spawn(request)
    driver.stop(request.instance_uuid, timeout=0)
    driver.start(request.instance_uuid)
    driver.reboot(request.instance_uuid, hard=True, timeout=0)
    driver.destroy(request.instance_uuid)
    assert started == []


def test_a_container_defined_again_keeps_the_tree_it_was_made_on(tmp_path, spawn_request,
                                                                  monkeypatch):
    """A resize, its revert or a retried spawn defines the container again over the tree its base
    marker names (after an unshelve: its shelve image's, not the request's image), and leaves the
    marker as it is, so the cache sweep keeps that tree; a first spawn fetches the image."""
    from compute_agent import container_rootfs

    driver = LibvirtDriver("lxc:///system?socket=/nonexistent", instances_dir=tmp_path)
    mounted: list[str] = []
    monkeypatch.setattr(container_rootfs, "mount_overlay",
                        lambda files, uuid, lower: mounted.append(lower.name) or tmp_path / "m")
    fetched: list[str] = []

    def fetch(image):
        fetched.append(image.id)
        raise DriverError("not reachable in this test")

    monkeypatch.setattr(driver.image_cache, "fetch", fetch)
    request = spawn_request()
    driver.files.make_instance_dir(request.instance_uuid)
    (driver.image_cache.directory / container_rootfs.ROOTFS_DIR_NAME / "shelved-abc").mkdir(
        parents=True)
    driver.files.record_base(request.instance_uuid, tmp_path / "shelved-abc")

    assert "<filesystem" in driver._container_xml(request)

    assert mounted == ["shelved-abc"] and fetched == []
    marker = driver.files.path(request.instance_uuid, "base")
    assert marker.read_text() == "shelved-abc\n"
    with pytest.raises(DriverError, match="not reachable"):
        driver._container_xml(spawn_request())  # a new container: its image is fetched
    assert fetched == ["img-1"]
