"""The libvirt driver against libvirt's real in-process test hypervisor (test:///default)."""

from __future__ import annotations

import shutil
import threading
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import libvirt
import pytest

from compute_agent import messages as msg
from compute_agent.domain_xml import KUMO_XMLNS, xml_text
from compute_agent.drivers.base import DriverError
from compute_agent.drivers.libvirt import (
    LibvirtDriver,
    default_domain_type,
    power_state_from_libvirt,
)

SpawnRequestFactory = Callable[..., msg.SpawnRequest]


@pytest.fixture
def raw_conn() -> libvirt.virConnect:
    """A second connection onto the same per-process test hypervisor, to act behind the driver's
    back the way an operator or a crashing guest would."""
    conn = libvirt.open("test:///default")
    yield conn
    conn.close()


def listed(driver: LibvirtDriver) -> dict[str, str]:
    return {d.uuid: d.power_state for d in driver.list_domains()}


def test_spawned_instance_runs_is_listed_and_is_gone_after_destroy(
    driver: LibvirtDriver, spawn_request: SpawnRequestFactory
) -> None:
    request = spawn_request()
    assert driver.spawn(request) == msg.POWER_RUNNING
    assert driver.power_state(request.instance_uuid) == msg.POWER_RUNNING
    assert listed(driver)[request.instance_uuid] == msg.POWER_RUNNING

    driver.destroy(request.instance_uuid)
    assert driver.power_state(request.instance_uuid) == msg.POWER_NOSTATE
    assert request.instance_uuid not in listed(driver)


def test_spawned_domain_is_persistent(
    driver: LibvirtDriver, spawn_request: SpawnRequestFactory, raw_conn: libvirt.virConnect
) -> None:
    request = spawn_request()
    driver.spawn(request)
    assert raw_conn.lookupByUUIDString(request.instance_uuid).isPersistent()


def test_destroying_a_missing_domain_succeeds(
    driver: LibvirtDriver, new_uuid: Callable[[], str]
) -> None:
    missing = new_uuid()
    driver.destroy(missing)
    driver.destroy(missing)
    assert driver.power_state(missing) == msg.POWER_NOSTATE


def test_spawning_twice_leaves_one_running_domain(
    driver: LibvirtDriver, spawn_request: SpawnRequestFactory
) -> None:
    request = spawn_request()
    assert driver.spawn(request) == msg.POWER_RUNNING
    assert driver.spawn(request) == msg.POWER_RUNNING
    assert [d for d in driver.list_domains() if d.uuid == request.instance_uuid] == [
        msg.DomainState(uuid=request.instance_uuid, power_state=msg.POWER_RUNNING)
    ]


def test_spawning_a_defined_but_stopped_instance_starts_it(
    driver: LibvirtDriver, spawn_request: SpawnRequestFactory, raw_conn: libvirt.virConnect
) -> None:
    request = spawn_request()
    driver.spawn(request)
    raw_conn.lookupByUUIDString(request.instance_uuid).destroy()
    assert driver.power_state(request.instance_uuid) == msg.POWER_SHUTDOWN
    assert driver.spawn(request) == msg.POWER_RUNNING


def test_destroy_removes_a_stopped_domain_too(
    driver: LibvirtDriver, spawn_request: SpawnRequestFactory, raw_conn: libvirt.virConnect
) -> None:
    request = spawn_request()
    driver.spawn(request)
    raw_conn.lookupByUUIDString(request.instance_uuid).destroy()
    driver.destroy(request.instance_uuid)
    assert request.instance_uuid not in listed(driver)


def test_domains_not_named_by_a_uuid_are_not_reported(
    driver: LibvirtDriver, raw_conn: libvirt.virConnect
) -> None:
    assert "test" in [d.name() for d in raw_conn.listAllDomains()]  # the test driver's own
    assert all(str(uuid.UUID(d.uuid)) == d.uuid for d in driver.list_domains())


def test_power_states_follow_what_happens_to_the_guest(
    driver: LibvirtDriver, spawn_request: SpawnRequestFactory, raw_conn: libvirt.virConnect
) -> None:
    request = spawn_request()
    driver.spawn(request)
    domain = raw_conn.lookupByUUIDString(request.instance_uuid)
    domain.suspend()
    assert driver.power_state(request.instance_uuid) == msg.POWER_PAUSED
    assert listed(driver)[request.instance_uuid] == msg.POWER_PAUSED
    domain.resume()
    assert driver.power_state(request.instance_uuid) == msg.POWER_RUNNING
    domain.shutdown()
    assert driver.power_state(request.instance_uuid) == msg.POWER_SHUTDOWN


def test_spawning_a_paused_instance_leaves_it_paused(
    driver: LibvirtDriver, spawn_request: SpawnRequestFactory, raw_conn: libvirt.virConnect
) -> None:
    request = spawn_request()
    driver.spawn(request)
    raw_conn.lookupByUUIDString(request.instance_uuid).suspend()
    assert driver.spawn(request) == msg.POWER_PAUSED


@pytest.mark.parametrize(
    "state, reason, expected",
    [
        (libvirt.VIR_DOMAIN_NOSTATE, 0, msg.POWER_NOSTATE),
        (libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_RUNNING_BOOTED, msg.POWER_RUNNING),
        (libvirt.VIR_DOMAIN_BLOCKED, 0, msg.POWER_RUNNING),
        (libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PAUSED_USER, msg.POWER_PAUSED),
        (libvirt.VIR_DOMAIN_SHUTDOWN, 0, msg.POWER_SHUTDOWN),
        (libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_SHUTOFF_SHUTDOWN, msg.POWER_SHUTDOWN),
        (libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_SHUTOFF_DESTROYED, msg.POWER_SHUTDOWN),
        (libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_SHUTOFF_CRASHED, msg.POWER_CRASHED),
        (libvirt.VIR_DOMAIN_CRASHED, 0, msg.POWER_CRASHED),
        (libvirt.VIR_DOMAIN_PMSUSPENDED, 0, msg.POWER_SUSPENDED),
        (999, 0, msg.POWER_NOSTATE),
    ],
)
def test_libvirt_states_map_to_contract_names(state: int, reason: int, expected: str) -> None:
    assert power_state_from_libvirt(state, reason) == expected


def test_host_info_describes_the_hypervisor(driver: LibvirtDriver, tmp_path: Path) -> None:
    info = driver.host_info()
    assert info["hypervisor_type"] == "TEST"
    assert isinstance(info["hypervisor_version"], int)
    assert info["hypervisor_hostname"]
    assert info["vcpus"] > 0
    assert info["memory_mb"] > 0
    assert info["local_gb"] == shutil.disk_usage(tmp_path).total // 1024**3
    assert set(info["cpu_info"]) >= {"arch", "model", "vendor", "topology", "features"}
    assert set(info["cpu_info"]["topology"]) == {"sockets", "cores", "threads"}


def test_local_disk_is_measured_on_the_nearest_existing_parent(tmp_path: Path) -> None:
    driver = LibvirtDriver("test:///default", instances_dir=tmp_path / "not" / "made" / "yet")
    try:
        assert driver.host_info()["local_gb"] == shutil.disk_usage(tmp_path).total // 1024**3
    finally:
        driver.close()


def test_hostile_display_name_survives_libvirt_and_stays_text(
    driver: LibvirtDriver, spawn_request: SpawnRequestFactory, raw_conn: libvirt.virConnect
) -> None:
    hostile = "</kumo:name><devices><disk type='file'/></devices>\x00\x1b"
    request = spawn_request(name=hostile)
    driver.spawn(request)
    live = ET.fromstring(raw_conn.lookupByUUIDString(request.instance_uuid).XMLDesc())
    assert live.findtext(f"metadata/{{{KUMO_XMLNS}}}instance/{{{KUMO_XMLNS}}}name") == xml_text(
        hostile
    )
    assert live.find("devices/disk") is None


def test_a_request_with_a_bad_uuid_touches_nothing(
    driver: LibvirtDriver, spawn_request: SpawnRequestFactory
) -> None:
    before = listed(driver)
    with pytest.raises(ValueError):
        driver.spawn(spawn_request(instance_uuid="test"))
    with pytest.raises(ValueError):
        driver.destroy("test")
    assert listed(driver) == before


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
