"""Spawn and destroy on libvirt's real in-process test hypervisor (test:///default)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable

import libvirt
import pytest

from compute_agent import messages as msg
from compute_agent.domain_xml import KUMO_XMLNS, xml_text
from compute_agent.drivers.libvirt import LibvirtDriver

from .conftest import listed

SpawnRequestFactory = Callable[..., msg.SpawnRequest]


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


def test_spawning_a_paused_instance_leaves_it_paused(
    driver: LibvirtDriver, spawn_request: SpawnRequestFactory, raw_conn: libvirt.virConnect
) -> None:
    request = spawn_request()
    driver.spawn(request)
    raw_conn.lookupByUUIDString(request.instance_uuid).suspend()
    assert driver.spawn(request) == msg.POWER_PAUSED


def test_destroy_removes_a_stopped_domain_too(
    driver: LibvirtDriver, spawn_request: SpawnRequestFactory, raw_conn: libvirt.virConnect
) -> None:
    request = spawn_request()
    driver.spawn(request)
    raw_conn.lookupByUUIDString(request.instance_uuid).destroy()
    driver.destroy(request.instance_uuid)
    assert request.instance_uuid not in listed(driver)


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


def test_the_test_driver_makes_no_files_for_an_instance(
    driver: LibvirtDriver, running: str
) -> None:
    assert not (driver.instances_dir / running).exists()
