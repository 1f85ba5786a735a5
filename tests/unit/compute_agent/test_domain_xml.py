from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from compute_agent import messages as msg
from compute_agent.domain_xml import (
    KUMO_XMLNS,
    METADATA_TEXT_LIMIT,
    DiskSpec,
    build_domain_xml,
    interface_macs,
    interface_xml,
    is_rescue,
    marked_rescue,
    with_interfaces,
    xml_text,
)

UUID = "6f1d3c0e-2b7a-4c1e-9a8f-0d5b1e2c3a4f"
NS = {"kumo": KUMO_XMLNS}


def request(**overrides: object) -> msg.SpawnRequest:
    fields: dict[str, object] = {
        "request_id": "req-1234",
        "instance_uuid": UUID,
        "name": "web-1",
        "hostname": "web-1",
        "vcpus": 2,
        "memory_mb": 512,
        "root_gb": 1,
    }
    fields.update(overrides)
    return msg.SpawnRequest(**fields)  # type: ignore[arg-type]


def build(**overrides: object) -> ET.Element:
    return ET.fromstring(build_domain_xml(request(**overrides), domain_type="test"))


def shape(root: ET.Element) -> list[tuple[str, tuple[tuple[str, str], ...]]]:
    """Every element's tag and attributes in document order: the structure, not the text."""
    return [(element.tag, tuple(sorted(element.attrib.items()))) for element in root.iter()]


def test_domain_is_named_and_identified_by_the_instance_uuid() -> None:
    root = build()
    assert root.tag == "domain"
    assert root.get("type") == "test"
    assert root.findtext("name") == UUID
    assert root.findtext("uuid") == UUID


def test_uuid_is_written_in_canonical_form() -> None:
    root = build(instance_uuid=UUID.upper())
    assert root.findtext("name") == UUID
    assert root.findtext("uuid") == UUID


def test_memory_is_given_in_kib_and_vcpus_as_asked() -> None:
    root = build(memory_mb=512, vcpus=2)
    assert root.find("memory").get("unit") == "KiB"
    assert root.findtext("memory") == str(512 * 1024)
    assert root.findtext("currentMemory") == str(512 * 1024)
    assert root.findtext("vcpu") == "2"


def test_guest_is_hvm_and_reads_its_identity_from_smbios() -> None:
    root = build()
    assert root.findtext("os/type") == "hvm"
    assert root.find("os/smbios").get("mode") == "sysinfo"
    sysinfo = root.find("sysinfo")
    assert sysinfo.get("type") == "smbios"
    entries = {e.get("name"): e.text for e in sysinfo.findall("system/entry")}
    assert entries["serial"] == UUID
    # What cloud-init's OpenStack datasource looks for before it asks the metadata service.
    assert entries["product"] == "OpenStack Compute"
    assert entries["uuid"] == UUID


def test_metadata_carries_display_name_and_request_id_in_our_namespace() -> None:
    root = build(name="web & db", request_id="req-42")
    instance = root.find("metadata/kumo:instance", NS)
    assert instance is not None
    assert instance.findtext("kumo:name", namespaces=NS) == "web & db"
    assert instance.findtext("kumo:request-id", namespaces=NS) == "req-42"


def test_devices_are_a_serial_console_and_vnc_on_loopback_by_default() -> None:
    devices = build().find("devices")
    assert [child.tag for child in devices] == ["serial", "console", "graphics"]
    assert devices.find("serial").get("type") == "pty"
    assert devices.find("console/target").get("type") == "serial"
    graphics = devices.find("graphics")
    assert graphics.get("type") == "vnc"
    assert graphics.get("autoport") == "yes"
    assert graphics.get("listen") == "127.0.0.1"
    assert graphics.find("listen").get("address") == "127.0.0.1"


def test_with_a_socket_vnc_listens_on_it_and_on_no_port() -> None:
    path = "/var/lib/kumo/instances/_vnc/6f1d3c0e-2b7a-4c1e-9a8f-0d5b1e2c3a4f.vnc"
    graphics = ET.fromstring(
        build_domain_xml(request(), domain_type="qemu", vnc_socket=path)
    ).find("devices/graphics")
    assert graphics.attrib == {"type": "vnc"}
    [listen] = graphics.findall("listen")
    assert listen.attrib == {"type": "socket", "socket": path}


@pytest.mark.parametrize(("path", "why"), [
    ("relative/a.vnc", "not an absolute path"),
    ("/run/\x00/a.vnc", "not an absolute path"),
    ("/" + "d" * 120 + "/a.vnc", "longer than a unix socket allows"),
])
def test_a_vnc_socket_that_cannot_be_one_is_refused(path: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        build_domain_xml(request(), domain_type="qemu", vnc_socket=path)


def test_vnc_listen_address_is_configurable() -> None:
    xml = build_domain_xml(request(), domain_type="qemu", vnc_listen="10.0.0.5")
    graphics = ET.fromstring(xml).find("devices/graphics")
    assert graphics.get("listen") == "10.0.0.5"
    assert graphics.find("listen").get("address") == "10.0.0.5"


def test_refuses_a_vnc_listen_value_that_is_not_an_address() -> None:
    with pytest.raises(ValueError):
        build_domain_xml(request(), domain_type="test", vnc_listen="0.0.0.0' autoport='no")


@pytest.mark.parametrize("address", ["0.0.0.0", "::"])
def test_a_guest_display_on_every_interface_is_refused(address: str) -> None:
    with pytest.raises(ValueError, match="every interface"):
        build_domain_xml(request(), domain_type="qemu", vnc_listen=address)


@pytest.mark.parametrize("domain_type", ["test", "qemu", "kvm"])
def test_domain_type_is_the_callers_choice(domain_type: str) -> None:
    xml = build_domain_xml(request(), domain_type=domain_type)
    assert ET.fromstring(xml).get("type") == domain_type


def test_refuses_an_unknown_domain_type() -> None:
    with pytest.raises(ValueError):
        build_domain_xml(request(), domain_type="xen")


@pytest.mark.parametrize("bad_uuid", ["", "web-1", "../../etc/passwd", f"{UUID}<x/>"])
def test_refuses_an_instance_uuid_that_is_not_a_uuid(bad_uuid: str) -> None:
    with pytest.raises(ValueError):
        build_domain_xml(request(instance_uuid=bad_uuid), domain_type="test")


@pytest.mark.parametrize(
    "field, value", [("memory_mb", 0), ("memory_mb", -1), ("vcpus", 0), ("vcpus", True)]
)
def test_refuses_sizes_that_are_not_positive_integers(field: str, value: object) -> None:
    with pytest.raises(ValueError):
        build_domain_xml(request(**{field: value}), domain_type="test")


HOSTILE = {
    "markup": "</kumo:name></kumo:instance></metadata><devices><disk type='file'/></devices>",
    "quotes": "\"'\"'; <graphics type='spice'/>",
    "entities": "&amp; &lt; &#0; &xxe; <!ENTITY x SYSTEM 'file:///etc/passwd'>",
    "cdata end": "]]><![CDATA[<disk/>]]>",
    "nul and controls": "web\x00-1\x01\x07\x08\x0b\x0c\x1b[31m\x7f\r\n\ttail",
    "lone surrogate": "half \ud800 a pair",
    "non-characters": "\ufffe\uffff",
    "very long": "A<&>" * 25_000,
    "unicode": "サーバー 🚀 ünïcödé",
}


@pytest.mark.parametrize("hostile", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_names_do_not_change_the_structure(hostile: str) -> None:
    baseline = shape(build(name="web-1", request_id="req-1"))
    xml = build_domain_xml(request(name=hostile, request_id=hostile), domain_type="test")
    root = ET.fromstring(xml)  # parses at all: no character XML 1.0 forbids slipped through
    assert shape(root) == baseline
    instance = root.find("metadata/kumo:instance", NS)
    assert instance.findtext("kumo:name", namespaces=NS) == xml_text(hostile)
    assert instance.findtext("kumo:request-id", namespaces=NS) == xml_text(hostile)


def test_forbidden_characters_are_replaced_and_nothing_else_changes() -> None:
    assert xml_text("a\x00b\x1fc\rd\te\nf") == "a\ufffdb\ufffdc\ufffdd\te\nf"
    assert xml_text("<&>\"'") == "<&>\"'"


def test_very_long_names_are_cut_so_the_definition_stays_small() -> None:
    xml = build_domain_xml(request(name="x" * 100_000), domain_type="test")
    name = ET.fromstring(xml).find("metadata/kumo:instance/kumo:name", NS).text
    assert len(name) == METADATA_TEXT_LIMIT
    assert len(xml) < 5_000


def test_disks_come_first_among_devices_and_describe_their_file() -> None:
    disks = [
        DiskSpec(path="/var/lib/kumo/instances/x/disk"),
        DiskSpec(
            path="/var/lib/kumo/instances/x/config.iso",
            target_dev="sda",
            bus="sata",
            driver_type="raw",
            device="cdrom",
            read_only=True,
        ),
    ]
    xml = build_domain_xml(request(), domain_type="qemu", disks=disks)
    devices = ET.fromstring(xml).find("devices")
    assert [child.tag for child in devices] == ["disk", "disk", "serial", "console", "graphics",
                                                 "memballoon"]
    root_disk, cdrom = devices.findall("disk")
    assert root_disk.get("device") == "disk"
    assert root_disk.find("source").get("file") == "/var/lib/kumo/instances/x/disk"
    assert root_disk.find("driver").get("type") == "qcow2"
    assert root_disk.find("target").attrib == {"dev": "vda", "bus": "virtio"}
    assert root_disk.find("readonly") is None
    assert cdrom.get("device") == "cdrom"
    assert cdrom.find("readonly") is not None


def test_serial_log_is_added_only_when_asked_for() -> None:
    assert build().find("devices/serial/log") is None
    xml = build_domain_xml(request(), domain_type="qemu", serial_log_path="/tmp/console.log")
    log = ET.fromstring(xml).find("devices/serial/log")
    assert log.get("file") == "/tmp/console.log"
    assert log.get("append") == "off"


def test_each_mac_address_becomes_a_user_mode_virtio_nic() -> None:
    xml = build_domain_xml(
        request(), domain_type="qemu", mac_addresses=["FA:16:3E:00:00:01", "fa:16:3e:00:00:02"]
    )
    interfaces = ET.fromstring(xml).findall("devices/interface")
    assert [i.get("type") for i in interfaces] == ["user", "user"]
    assert [i.find("mac").get("address") for i in interfaces] == [
        "fa:16:3e:00:00:01", "fa:16:3e:00:00:02"
    ]
    assert {i.find("model").get("type") for i in interfaces} == {"virtio"}


@pytest.mark.parametrize("bad", ["", "fa:16:3e:00:00", "fa:16:3e:00:00:01'/><disk", "zz:zz:zz:zz:zz:zz"])
def test_refuses_a_mac_address_that_is_not_one(bad: str) -> None:
    with pytest.raises(ValueError):
        build_domain_xml(request(), domain_type="qemu", mac_addresses=[bad])


def test_video_and_machine_type_are_added_only_when_asked_for() -> None:
    root = build()
    assert root.find("devices/video") is None
    assert root.find("os/type").get("machine") is None
    root = ET.fromstring(
        build_domain_xml(request(), domain_type="qemu", video_model="vga", machine="pc")
    )
    assert root.find("devices/video/model").get("type") == "vga"
    assert root.find("os/type").get("machine") == "pc"
    with pytest.raises(ValueError):
        build_domain_xml(request(), domain_type="qemu", machine="pc' foo='bar")


def test_the_guest_cpu_is_never_host_passthrough() -> None:
    for domain_type in ("qemu", "kvm"):
        root = ET.fromstring(build_domain_xml(request(), domain_type=domain_type))
        assert root.find("cpu") is None


# --- rescue definitions, boot order and NICs edited in place


def test_a_rescue_definition_is_marked_and_a_normal_one_is_not() -> None:
    normal = build_domain_xml(request(), domain_type="test")
    assert not is_rescue(normal)
    assert is_rescue(build_domain_xml(request(), domain_type="test", rescue=True))
    assert is_rescue(marked_rescue(normal))
    assert marked_rescue(marked_rescue(normal)).count("rescue") == marked_rescue(normal).count(
        "rescue")


def test_disks_with_a_boot_order_replace_the_os_boot_device() -> None:
    disks = [DiskSpec(path="/i/disk.rescue", boot_order=1),
             DiskSpec(path="/i/disk", target_dev="sda", bus="scsi", boot_order=2)]
    root = ET.fromstring(build_domain_xml(request(), domain_type="qemu", disks=disks))
    assert root.find("os/boot") is None
    assert [d.find("boot").get("order") for d in root.findall("devices/disk")] == ["1", "2"]
    assert root.find("devices/controller[@type='scsi']").get("model") == "virtio-scsi"


@pytest.mark.parametrize("disk", [DiskSpec(path="/i/d", bus="floppy-ish"),
                                  DiskSpec(path="/i/d", device="lun"),
                                  DiskSpec(path="/i/d", target_dev="vda' evil='1"),
                                  DiskSpec(path="/i/d", boot_order=0)])
def test_a_disk_libvirt_would_misread_is_refused(disk: DiskSpec) -> None:
    with pytest.raises(ValueError):
        build_domain_xml(request(), domain_type="qemu", disks=[disk])


def test_nics_are_set_to_a_list_keeping_the_ones_that_stay_as_they_were() -> None:
    xml = build_domain_xml(request(), domain_type="qemu",
                           mac_addresses=["fa:16:3e:00:00:01", "fa:16:3e:00:00:02"])
    root = ET.fromstring(xml)
    kept = root.find("devices/interface")
    ET.SubElement(kept, "address", type="pci", slot="0x03")  # what libvirt adds once defined
    changed = with_interfaces(ET.tostring(root, encoding="unicode"),
                              ["FA:16:3E:00:00:01", "fa:16:3e:00:00:03"])
    assert interface_macs(changed) == ["fa:16:3e:00:00:01", "fa:16:3e:00:00:03"]
    first = ET.fromstring(changed).find("devices/interface")
    assert first.find("address").get("slot") == "0x03"
    assert interface_macs(with_interfaces(changed, [])) == []
    assert interface_xml("fa:16:3e:00:00:09").startswith('<interface type="user">')


def test_real_guests_report_their_own_memory_use_through_the_balloon() -> None:
    spawn = msg.SpawnRequest(request_id="r", instance_uuid="6f0c1f8e-2a39-4d8e-9b43-0a3e6c1d2b7f",
                               name="vm", hostname="vm", vcpus=1, memory_mb=128, root_gb=1)
    qemu = ET.fromstring(build_domain_xml(spawn, domain_type="qemu"))
    balloon = qemu.find("./devices/memballoon")
    assert balloon is not None and balloon.get("model") == "virtio"
    assert balloon.find("stats") is not None and balloon.find("stats").get("period") == "10"
    test = ET.fromstring(build_domain_xml(spawn, domain_type="test"))
    assert test.find("./devices/memballoon") is None
