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
    ("a snapshot", lambda d: d.snapshot(UUID, "/x")),
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
