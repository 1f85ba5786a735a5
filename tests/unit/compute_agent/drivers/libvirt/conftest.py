"""Shared by the libvirt driver's tests: a second connection onto the test hypervisor, and the
domains as the driver lists them."""

from __future__ import annotations

import libvirt
import pytest

from compute_agent.drivers.libvirt import LibvirtDriver


@pytest.fixture
def raw_conn() -> libvirt.virConnect:
    """A second connection onto the same per-process test hypervisor, to act behind the driver's
    back the way an operator or a crashing guest would."""
    conn = libvirt.open("test:///default")
    yield conn
    conn.close()


def listed(driver: LibvirtDriver) -> dict[str, str]:
    return {d.uuid: d.power_state for d in driver.list_domains()}
