"""The driver's connection: libvirt's refusals as DriverError, reconnection, many threads on
one connection, and the domain type each URI gets."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import libvirt
import pytest

from compute_agent import messages as msg
from compute_agent.drivers.base import DriverError
from compute_agent.drivers.libvirt import LibvirtDriver, default_domain_type

from .conftest import listed

SpawnRequestFactory = Callable[..., msg.SpawnRequest]


def test_libvirt_refusals_surface_as_driver_errors(
    driver: LibvirtDriver, new_uuid: Callable[[], str], raw_conn: libvirt.virConnect
) -> None:
    # A foreign domain holding the name we need: libvirt refuses our definition.
    instance_uuid = new_uuid()
    foreign = raw_conn.defineXML(
        f"<domain type='test'><name>{instance_uuid}</name><memory>65536</memory>"
        "<os><type>hvm</type></os></domain>"
    )
    try:
        request = msg.SpawnRequest(
            request_id="r", instance_uuid=instance_uuid, name="n", hostname="n",
            vcpus=1, memory_mb=64, root_gb=1,
        )
        with pytest.raises(DriverError, match=instance_uuid):
            driver.spawn(request)
    finally:
        foreign.undefine()


def test_driver_reconnects_when_its_connection_dies(
    driver: LibvirtDriver, spawn_request: SpawnRequestFactory, raw_conn: libvirt.virConnect
) -> None:
    # raw_conn stays open because the test hypervisor forgets its domains when the process's
    # last connection to it closes; a real daemon keeps them, which is what this stands for.
    request = spawn_request()
    driver.spawn(request)
    driver._conn.close()  # what a libvirtd restart looks like from this side
    assert driver.power_state(request.instance_uuid) == msg.POWER_RUNNING
    driver.close()
    assert listed(driver)[request.instance_uuid] == msg.POWER_RUNNING


def test_many_threads_can_use_one_driver_at_once(
    driver: LibvirtDriver, spawn_request: SpawnRequestFactory
) -> None:
    requests = [spawn_request() for _ in range(12)]
    start = threading.Barrier(len(requests))

    def work(request: msg.SpawnRequest) -> str:
        start.wait(10)
        driver.spawn(request)
        driver.list_domains()
        return driver.power_state(request.instance_uuid)

    with ThreadPoolExecutor(max_workers=len(requests)) as pool:
        states = list(pool.map(work, requests, timeout=30))
    assert states == [msg.POWER_RUNNING] * len(requests)
    listed_now = listed(driver)
    assert all(listed_now[r.instance_uuid] == msg.POWER_RUNNING for r in requests)


@pytest.mark.parametrize(
    "uri, expected",
    [
        ("test:///default", "test"),
        ("test:///tmp/host.xml", "test"),
        ("qemu:///system", "qemu"),
        ("qemu+ssh://root@host/system", "qemu"),
    ],
)
def test_domain_type_defaults_from_the_uri(uri: str, expected: str) -> None:
    assert default_domain_type(uri) == expected


def test_kvm_is_never_guessed_and_other_hypervisors_need_an_explicit_type() -> None:
    assert LibvirtDriver("qemu:///system").domain_type == "qemu"
    assert LibvirtDriver("qemu:///system", domain_type="kvm").domain_type == "kvm"
    with pytest.raises(DriverError):
        default_domain_type("xen:///system")
