"""How the agent uses its network driver (compute_agent/manager*.py, guest_tasks.py,
migration_tasks.py, network_tasks.py, domain_xml.py): ports are plugged before a domain is made,
unplugged after it goes, a failed plug fails the spawn cleanly, bridge NICs are written as
libvirt wants them, and the data-plane host tasks reach the driver. The network driver is the
recording fake; the hypervisor is libvirt's test driver (or the in-memory fake for migrations)."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import libvirt
import pytest

from compute_agent import messages as msg
from compute_agent.domain_xml import interface_xml, with_interfaces
from compute_agent.drivers.fake import FakeCloud
from compute_agent.drivers.libvirt import LibvirtDriver
from compute_agent.manager import ComputeManager
from compute_agent.network.base import NetworkError, Nic
from compute_agent.network.fake import FakeNetworkDriver
from tests.unit.compute_agent.conftest import SpawnRequestFactory
from tests.unit.compute_agent.fakes import RecordingReporter

NET = "5a1b2c3d-0000-4000-8000-00000000e001"
BRIDGE_NIC = Nic(kind="bridge", mac_address="fa:16:3e:00:00:0b", bridge="brq5a1b2c3d-00",
                 tap="tapb0b0b0b0-22", mtu=1450)


def port(port_id: str, mac: str, network_type: str = "vxlan") -> msg.NetworkInfo:
    return msg.NetworkInfo(network_id=NET, network_name="n", port_id=port_id, mac_address=mac,
                           network_type=network_type, segmentation_id=7, mtu=1450)


@pytest.fixture
def network() -> FakeNetworkDriver:
    return FakeNetworkDriver()


@pytest.fixture
def wired(driver: LibvirtDriver, reporter: RecordingReporter,
          network: FakeNetworkDriver) -> ComputeManager:
    return ComputeManager("host-a", driver, reporter, host_ip="192.0.2.10", network=network)


def _definition(driver: LibvirtDriver, instance_uuid: str) -> str:
    return driver._act("test", instance_uuid,
                       lambda d: str(d.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)))


# --- domain XML


def test_a_bridge_nic_is_a_tap_in_its_bridge_with_its_mtu() -> None:
    element = ET.fromstring(interface_xml(BRIDGE_NIC))
    assert element.get("type") == "bridge"
    assert element.find("source").get("bridge") == "brq5a1b2c3d-00"  # type: ignore[union-attr]
    assert element.find("target").get("dev") == "tapb0b0b0b0-22"  # type: ignore[union-attr]
    assert element.find("mac").get("address") == "fa:16:3e:00:00:0b"  # type: ignore[union-attr]
    assert element.find("model").get("type") == "virtio"  # type: ignore[union-attr]
    assert element.find("mtu").get("size") == "1450"  # type: ignore[union-attr]
    assert ET.fromstring(interface_xml("fa:16:3e:00:00:0a")).get("type") == "user"
    with pytest.raises(ValueError):
        interface_xml(Nic(kind="bridge", mac_address="fa:16:3e:00:00:0b", bridge="br0",
                          tap="tap'/><evil"))


def test_with_interfaces_keeps_user_nics_and_adds_bridge_ones() -> None:
    domain = ("<domain><devices><interface type='user'><mac address='fa:16:3e:00:00:0a'/>"
              "<address type='pci' slot='0x03'/></interface></devices></domain>")
    root = ET.fromstring(with_interfaces(domain, ["fa:16:3e:00:00:0a", BRIDGE_NIC]))
    kinds = [(i.get("type"), i.find("mac").get("address"))  # type: ignore[union-attr]
             for i in root.findall("devices/interface")]
    assert kinds == [("user", "fa:16:3e:00:00:0a"), ("bridge", "fa:16:3e:00:00:0b")]
    assert root.find("devices/interface/address") is not None  # the kept one is untouched


# --- the manager


def test_spawn_plugs_the_ports_and_destroy_unplugs_them(
    wired: ComputeManager, network: FakeNetworkDriver, spawn_request: SpawnRequestFactory
) -> None:
    request = spawn_request(networks=[port("p-a", "fa:16:3e:00:00:0a")])
    assert wired.spawn(request).event == msg.EVENT_SPAWNED
    assert network.plugged == {"p-a": request.instance_uuid}
    assert network.calls[0] == ("plug", (request.instance_uuid, ["p-a"]))
    wired.destroy(msg.DestroyRequest(request_id="r", instance_uuid=request.instance_uuid))
    assert network.plugged == {}


def test_a_failed_plug_fails_the_spawn_and_leaves_no_domain(
    wired: ComputeManager, network: FakeNetworkDriver, driver: LibvirtDriver,
    spawn_request: SpawnRequestFactory
) -> None:
    network.fail_on["plug"] = NetworkError("no bridge for network n")
    request = spawn_request(networks=[port("p-a", "fa:16:3e:00:00:0a")])
    event = wired.spawn(request)
    assert (event.event, event.message) == (msg.EVENT_SPAWN_FAILED, "no bridge for network n")
    assert driver.power_state(request.instance_uuid) == msg.POWER_NOSTATE
    assert request.instance_uuid not in driver.list_domains()
    assert ("unplug", (request.instance_uuid, None)) in network.calls


def test_attach_plugs_first_and_detach_unplugs_the_port_that_left(
    wired: ComputeManager, network: FakeNetworkDriver, driver: LibvirtDriver,
    spawn_request: SpawnRequestFactory
) -> None:
    request = spawn_request()
    assert wired.spawn(request).event == msg.EVENT_SPAWNED
    vm = request.instance_uuid
    a, b = port("p-a", "fa:16:3e:00:00:0a", "user"), port("b0b0b0b0-2222", "fa:16:3e:00:00:0b")
    attached = wired.attach_interface(msg.InterfaceRequest(
        request_id="r", instance_uuid=vm, port_id=b.port_id, networks=[a, b]))
    assert attached.event == msg.EVENT_INTERFACE_ATTACHED
    assert set(network.plugged) == {"p-a", b.port_id}
    nics = ET.fromstring(_definition(driver, vm)).findall("devices/interface")
    assert [(n.get("type"), (n.find("target").get("dev") if n.get("type") == "bridge"  # type: ignore[union-attr]
             else None)) for n in nics] == [("user", None), ("bridge", "tapb0b0b0b0-22")]
    detached = wired.detach_interface(msg.InterfaceRequest(
        request_id="r", instance_uuid=vm, port_id=b.port_id, networks=[a]))
    assert detached.event == msg.EVENT_INTERFACE_DETACHED
    assert network.calls[-1] == ("unplug", (vm, [b.port_id]))
    assert set(network.plugged) == {"p-a"}


def test_a_failed_plug_on_attach_is_an_action_failure_naming_the_port(
    wired: ComputeManager, network: FakeNetworkDriver, spawn_request: SpawnRequestFactory
) -> None:
    request = spawn_request()
    wired.spawn(request)
    network.fail_on["plug"] = NetworkError("no such physical network")
    event = wired.attach_interface(msg.InterfaceRequest(
        request_id="r", instance_uuid=request.instance_uuid, port_id="p-b",
        networks=[port("p-b", "fa:16:3e:00:00:0b")]))
    assert (event.event, event.port_id, event.message) == (
        msg.EVENT_ACTION_FAILED, "p-b", "no such physical network")


def test_the_data_plane_tasks_reach_the_network_driver(
    wired: ComputeManager, network: FakeNetworkDriver
) -> None:
    refresh = msg.PortsRefresh(request_id="r", removed=["p-x"])
    wired.refresh_ports(refresh)
    wired.sync_router(msg.RouterSpec(request_id="r", router_id="rt-1"))
    wired.remove_router(msg.RouterSpec(request_id="r", router_id="rt-1"))
    assert network.calls == [("refresh", refresh), ("sync_router", "rt-1"),
                             ("remove_router", "rt-1")]


@pytest.fixture
def fake_host() -> Iterator[tuple[ComputeManager, FakeNetworkDriver]]:
    network = FakeNetworkDriver()
    yield ComputeManager("host-a", FakeCloud().driver("host-a"), RecordingReporter(),
                         network=network), network


def test_the_destination_plugs_before_the_guest_arrives(
    fake_host: tuple[ComputeManager, FakeNetworkDriver]
) -> None:
    manager, network = fake_host
    vm = str(uuid.uuid4())
    spawn = msg.SpawnRequest(request_id="r", instance_uuid=vm, name="n", hostname="n", vcpus=1,
                             memory_mb=64, root_gb=1, networks=[port("p-a", "fa:16:3e:00:00:0a")])
    event = manager.prepare_migration(msg.MigrationRequest(
        request_id="r", instance_uuid=vm, migration_id="m1", dest_host="host-a", spawn=spawn))
    assert event.event == msg.EVENT_MIGRATION_PREPARED
    assert network.plugged == {"p-a": vm}


def test_the_host_report_names_the_network_driver(
    wired: ComputeManager, manager: ComputeManager
) -> None:
    assert wired.host_report().network_driver == "fake"
    assert manager.host_report().network_driver == "user"


def test_without_a_network_driver_every_nic_is_user_mode(
    manager: ComputeManager, driver: LibvirtDriver
) -> None:
    assert manager.network.name == "user"
    assert driver.nics([port("p-a", "fa:16:3e:00:00:0a")]) == [
        Nic(kind="user", mac_address="fa:16:3e:00:00:0a")]
