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
