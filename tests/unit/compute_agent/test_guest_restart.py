"""The host's side of instance HA: a hard reboot that carries the guest brings back a domain the
host lost (on the disks it kept, its ports plugged again), and the libvirt driver tells the agent
at once when a guest stops without being asked (cloud/conductor/guest_recovery.py restarts it)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest

from compute_agent import messages as msg
from compute_agent.drivers.libvirt import LibvirtDriver
from compute_agent.manager import ComputeManager
from compute_agent.network.fake import FakeNetworkDriver
from tests.unit.compute_agent.conftest import SpawnRequestFactory
from tests.unit.compute_agent.fakes import RecordingReporter

NET = "5a1b2c3d-0000-4000-8000-00000000e001"


def port(port_id: str, mac: str) -> msg.NetworkInfo:
    return msg.NetworkInfo(network_id=NET, network_name="n", port_id=port_id, mac_address=mac,
                           network_type="vxlan", segmentation_id=7, mtu=1450)


@pytest.fixture
def network() -> FakeNetworkDriver:
    return FakeNetworkDriver()


@pytest.fixture
def wired(driver: LibvirtDriver, reporter: RecordingReporter,
          network: FakeNetworkDriver) -> ComputeManager:
    return ComputeManager("host-a", driver, reporter, host_ip="192.0.2.10", network=network)


def hard_reboot(spawn: msg.SpawnRequest | None, instance_uuid: str,
                reboot_type: str = msg.REBOOT_HARD) -> msg.RebootRequest:
    return msg.RebootRequest(request_id="req-recover-gone-1", instance_uuid=instance_uuid,
                             reboot_type=reboot_type, spawn=spawn)


def forget_domain(driver: LibvirtDriver, instance_uuid: str) -> None:
    """What libvirt's test driver does to every domain when its agent restarts."""
    def undefine(conn: libvirt.virConnect) -> None:
        domain = conn.lookupByUUIDString(instance_uuid)
        domain.destroy()
        domain.undefine()

    driver._call("forgetting", undefine)


def test_a_hard_reboot_recreates_a_domain_the_host_lost_with_its_ports_plugged(
    wired: ComputeManager, network: FakeNetworkDriver, driver: LibvirtDriver,
    spawn_request: SpawnRequestFactory
) -> None:
    spawn = spawn_request(networks=[port("p-a", "fa:16:3e:00:00:0a")])
    assert wired.spawn(spawn).event == msg.EVENT_SPAWNED
    forget_domain(driver, spawn.instance_uuid)
    network.plugged.clear()
    assert driver.power_state(spawn.instance_uuid) == msg.POWER_NOSTATE

    event = wired.reboot(hard_reboot(spawn, spawn.instance_uuid))

    assert (event.event, event.power_state) == (msg.EVENT_REBOOTED, msg.POWER_RUNNING)
    assert driver.power_state(spawn.instance_uuid) == msg.POWER_RUNNING
    assert network.plugged == {"p-a": spawn.instance_uuid}


def test_a_hard_reboot_that_carries_the_guest_power_cycles_a_domain_still_there(
    wired: ComputeManager, network: FakeNetworkDriver, driver: LibvirtDriver,
    spawn_request: SpawnRequestFactory
) -> None:
    spawn = spawn_request(networks=[port("p-a", "fa:16:3e:00:00:0a")])
    wired.spawn(spawn)
    wired.stop(msg.PowerRequest(request_id="r", instance_uuid=spawn.instance_uuid, timeout=0))
    plugs_before = len([c for c in network.calls if c[0] == "plug"])

    event = wired.reboot(hard_reboot(spawn, spawn.instance_uuid))

    assert (event.event, event.power_state) == (msg.EVENT_REBOOTED, msg.POWER_RUNNING)
    # Plugged again: a host that rebooted lost its bridges, the domain did not.
    assert len([c for c in network.calls if c[0] == "plug"]) == plugs_before + 1


@pytest.mark.parametrize("reboot_type", [msg.REBOOT_HARD, msg.REBOOT_SOFT])
def test_a_reboot_without_the_guest_or_a_soft_one_fails_when_the_domain_is_gone(
    wired: ComputeManager, driver: LibvirtDriver, spawn_request: SpawnRequestFactory,
    reboot_type: str
) -> None:
    spawn = spawn_request()
    wired.spawn(spawn)
    forget_domain(driver, spawn.instance_uuid)
    carried = spawn if reboot_type == msg.REBOOT_SOFT else None

    event = wired.reboot(hard_reboot(carried, spawn.instance_uuid, reboot_type))

    assert (event.event, event.action) == (msg.EVENT_ACTION_FAILED, msg.ACTION_REBOOT)
    assert driver.power_state(spawn.instance_uuid) == msg.POWER_NOSTATE


def test_a_reboot_carrying_another_instance_is_refused(
    wired: ComputeManager, driver: LibvirtDriver, spawn_request: SpawnRequestFactory
) -> None:
    spawn, other = spawn_request(), spawn_request()
    wired.spawn(spawn)
    event = wired.reboot(hard_reboot(other, spawn.instance_uuid))
    assert event.event == msg.EVENT_ACTION_FAILED
    assert driver.power_state(other.instance_uuid) == msg.POWER_NOSTATE


def test_the_reboot_request_carries_the_guest_across_the_wire(
        spawn_request: SpawnRequestFactory) -> None:
    spawn = spawn_request()
    request = hard_reboot(spawn, spawn.instance_uuid)
    again = msg.RebootRequest.from_dict(request.to_dict())
    assert again.spawn == spawn
    # An older control plane sends none, and a host ignores what it does not know.
    assert msg.RebootRequest.from_dict({"request_id": "r", "instance_uuid": "u"}).spawn is None


# --- libvirt's lifecycle events


class Domain:
    def __init__(self, name: str) -> None:
        self._name = name

    def name(self) -> str:
        return self._name


@pytest.fixture
def real_guests_driver(tmp_path: Path) -> Iterator[LibvirtDriver]:
    """A driver that thinks its guests are real (so it watches them), on libvirt's test URI."""
    driver = LibvirtDriver("test:///default", instances_dir=tmp_path, domain_type="qemu")
    yield driver
    driver.close()


class Told:
    def __init__(self) -> None:
        self.stopped: list[list[str]] = []
        self.event = threading.Event()

    def __call__(self, uuids: list[str]) -> None:
        self.stopped.append(uuids)
        self.event.set()


def test_a_guest_whose_qemu_died_is_told_at_once_and_a_burst_once(
        real_guests_driver: LibvirtDriver) -> None:
    told = Told()
    real_guests_driver.watch_guests(told)
    dead, panicked = str(uuid.uuid4()), str(uuid.uuid4())

    real_guests_driver._lifecycle_event(None, Domain(dead), libvirt.VIR_DOMAIN_EVENT_STOPPED,
                                        libvirt.VIR_DOMAIN_EVENT_STOPPED_FAILED, None)
    real_guests_driver._lifecycle_event(None, Domain(panicked), libvirt.VIR_DOMAIN_EVENT_CRASHED,
                                        libvirt.VIR_DOMAIN_EVENT_CRASHED_PANICKED, None)

    assert told.event.wait(5)
    assert told.stopped == [sorted([dead, panicked])]


def test_stops_the_agent_made_and_domains_not_kumos_are_not_told(
        real_guests_driver: LibvirtDriver) -> None:
    told = Told()
    real_guests_driver.watch_guests(told)
    mine = str(uuid.uuid4())
    for name, event, detail in [
        (mine, libvirt.VIR_DOMAIN_EVENT_STOPPED, libvirt.VIR_DOMAIN_EVENT_STOPPED_DESTROYED),
        (mine, libvirt.VIR_DOMAIN_EVENT_STOPPED, libvirt.VIR_DOMAIN_EVENT_STOPPED_MIGRATED),
        (mine, libvirt.VIR_DOMAIN_EVENT_STARTED, 0),
        ("operators-vm", libvirt.VIR_DOMAIN_EVENT_STOPPED, libvirt.VIR_DOMAIN_EVENT_STOPPED_FAILED),
    ]:
        real_guests_driver._lifecycle_event(None, Domain(name), event, detail, None)
    assert not told.event.wait(1)


def test_each_connection_is_watched_and_let_go_when_closed(
        real_guests_driver: LibvirtDriver) -> None:
    real_guests_driver.watch_guests(Told())
    real_guests_driver.host_info()  # opens the connection
    assert len(real_guests_driver._event_callbacks or {}) == 1
    real_guests_driver.close()
    assert real_guests_driver._event_callbacks == {}
    real_guests_driver.host_info()  # a new connection is watched again
    assert len(real_guests_driver._event_callbacks or {}) == 1


def test_the_test_driver_watches_nothing(driver: LibvirtDriver) -> None:
    driver.watch_guests(Told())
    driver.host_info()
    assert not driver._event_callbacks
