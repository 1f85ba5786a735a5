"""The container (libvirt LXC) definition, parsed back: what libvirt will read from it."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from compute_agent.container_xml import build_container_xml, is_container, veths_to_name
from compute_agent.domain_xml import KUMO_XMLNS
from compute_agent.messages import SpawnRequest
from compute_agent.network.base import Nic

UUID = "11111111-2222-4333-8444-555555555555"


def request(**changes) -> SpawnRequest:
    fields = {"request_id": "req-1", "instance_uuid": UUID.upper(), "name": "ct <1>", "hostname": "ct1",
                  "vcpus": 2, "memory_mb": 64, "root_gb": 1}
    fields.update(changes)
    return SpawnRequest(**fields)


def parse(xml: str) -> ET.Element:
    return ET.fromstring(xml)


def test_a_container_runs_init_over_its_root_filesystem_with_the_flavor_limits():
    root = parse(build_container_xml(request(), rootfs="/srv/i/rootfs"))
    assert root.get("type") == "lxc"
    assert root.findtext("name") == UUID and root.findtext("uuid") == UUID
    assert root.findtext("os/type") == "exe"
    assert root.findtext("os/init") == "/sbin/init"
    # The flavor's memory is the memory cgroup's limit; its vCPUs weigh as a VM's would.
    assert root.find("memory").get("unit") == "KiB" and root.findtext("memory") == str(64 * 1024)
    assert root.findtext("vcpu") == "2"
    assert root.findtext("cputune/shares") == "2048"
    fs = root.find("devices/filesystem")
    assert fs.get("type") == "mount"
    assert fs.find("source").get("dir") == "/srv/i/rootfs"
    assert fs.find("target").get("dir") == "/"
    console = root.find("devices/console")
    assert console.get("type") == "pty" and console.find("target").get("type") == "lxc"
    # No display, no disks: nothing of a VM's devices.
    assert root.find("devices/graphics") is None and root.find("devices/disk") is None
    assert is_container(ET.tostring(root, encoding="unicode"))


def test_the_container_has_a_network_namespace_of_its_own_even_without_nics():
    root = parse(build_container_xml(request(), rootfs="/r"))
    assert root.find("features/privnet") is not None
    assert root.findall("devices/interface") == []


def test_init_learns_its_hostname_and_instance_id_from_its_environment():
    root = parse(build_container_xml(request(hostname="web 1.example"), rootfs="/r",
                                     init="/bin/myinit"))
    env = {e.get("name"): e.text for e in root.findall("os/initenv")}
    assert env == {"KUMO_HOSTNAME": "web-1-example", "KUMO_INSTANCE_UUID": UUID}
    assert root.findtext("os/init") == "/bin/myinit"


def test_the_name_is_metadata_escaped_never_markup():
    root = parse(build_container_xml(request(), rootfs="/r"))
    assert root.findtext(f"metadata/{{{KUMO_XMLNS}}}instance/{{{KUMO_XMLNS}}}name") == "ct <1>"


def test_each_bridge_nic_is_a_veth_in_its_bridge_named_as_the_port_s_tap():
    nics = [Nic(kind="bridge", mac_address="FA:16:3E:00:00:01", bridge="brq-net1",
                tap="tap0123", mtu=1450)]
    interface = parse(build_container_xml(request(), rootfs="/r", nics=nics)).find(
        "devices/interface")
    assert interface.get("type") == "bridge"
    assert interface.find("source").get("bridge") == "brq-net1"
    assert interface.find("mac").get("address") == "fa:16:3e:00:00:01"
    assert interface.find("mtu").get("size") == "1450"
    # The name every rule of the data plane matches, as a VM's tap has it.
    assert interface.find("target").get("dev") == "tap0123"


DEFINED = """<domain type='lxc'><devices>
  <interface type='bridge'><mac address='FA:16:3E:00:00:01'/><source bridge='brqa'/>
    <target dev='tapa'/></interface>
  <interface type='bridge'><mac address='fa:16:3e:00:00:02'/><source bridge='brqb'/>
    <target dev='tapb'/></interface>
</devices></domain>"""


def live(first: str, second: str) -> str:
    return (DEFINED.replace("target dev='tapa'", f"target dev='{first}'")
            .replace("target dev='tapb'", f"target dev='{second}'"))


def test_veths_libvirt_named_otherwise_are_paired_with_their_tap_names_by_mac():
    assert veths_to_name(DEFINED, live("vnet4", "vnet3")) == [("vnet4", "tapa", "brqa"),
                                                               ("vnet3", "tapb", "brqb")]
    # The MAC pairs them, whatever order libvirt lists them in (and however it spells the MAC).
    swapped = live("vnet4", "vnet3").replace("FA:16:3E:00:00:01", "fa:16:3e:00:00:09").replace(
        "fa:16:3e:00:00:02", "fa:16:3e:00:00:01").replace("fa:16:3e:00:00:09", "FA:16:3E:00:00:02")
    assert veths_to_name(DEFINED, swapped) == [("vnet4", "tapb", "brqb"),
                                               ("vnet3", "tapa", "brqa")]
    assert veths_to_name(DEFINED, live("tapa", "vnet9")) == [("vnet9", "tapb", "brqb")]
    assert veths_to_name(DEFINED, live("tapa", "tapb")) == []


def test_a_nic_without_a_wanted_name_or_a_live_one_is_left_alone():
    undefined = DEFINED.replace("<target dev='tapb'/>", "")
    assert veths_to_name(undefined, live("tapa", "vnet1")) == []
    assert veths_to_name(DEFINED, live("tapa", "vnet1").replace("<target dev='vnet1'/>", "")) == []


@pytest.mark.parametrize("nic", [Nic(kind="user", mac_address="fa:16:3e:00:00:01"),
                                 "fa:16:3e:00:00:01"])
def test_a_user_mode_nic_is_refused(nic):
    with pytest.raises(ValueError, match="user-mode"):
        build_container_xml(request(), rootfs="/r", nics=[nic])


@pytest.mark.parametrize("bad", [{"rootfs": "relative/dir"}, {"rootfs": "/r", "init": "sbin/init"},
                                 {"rootfs": "/r\x01x"}])
def test_paths_must_be_absolute_and_plain(bad):
    with pytest.raises(ValueError, match="absolute path"):
        build_container_xml(request(), **bad)


@pytest.mark.parametrize("bad", [{"memory_mb": 0}, {"vcpus": 0}, {"instance_uuid": "../x"}])
def test_sizes_and_ids_are_checked(bad):
    with pytest.raises(ValueError):
        build_container_xml(request(**bad), rootfs="/r")
