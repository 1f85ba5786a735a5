"""The libvirt domain XML for one instance, built as an element tree.

Everything a user controls (display name, request id) reaches the document only as element text
through ElementTree, which escapes markup; characters XML 1.0 cannot carry at all (NUL and most
other control characters, lone surrogates) are replaced first, because an escaper cannot make them
legal and libvirt would reject the whole definition.
"""

from __future__ import annotations

import ipaddress
import os
import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass

from compute_agent.messages import BlockDevice, SpawnRequest
from compute_agent.network.base import Nic

KUMO_XMLNS = "http://kumo.invalid/xmlns/instance/1.0"
KUMO_XMLNS_PREFIX = "kumo"

DOMAIN_TYPES = frozenset({"test", "qemu", "kvm"})

# Metadata is for people reading `virsh dumpxml`; the database holds the real values, so there is
# no reason to let a 100k-character name bloat every definition libvirt stores and re-parses.
METADATA_TEXT_LIMIT = 255

# Tab and newline survive a round trip; carriage return does not (parsers normalise it to a
# newline), so it is replaced along with the characters XML 1.0 forbids outright.
_NOT_XML_TEXT = re.compile("[^\t\n\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_REPLACEMENT = "\ufffd"

ET.register_namespace(KUMO_XMLNS_PREFIX, KUMO_XMLNS)


@dataclass(frozen=True)
class DiskSpec:
    """One file-backed disk: the instance's overlay, or its config drive as a cdrom."""

    path: str
    target_dev: str = "vda"
    bus: str = "virtio"
    driver_type: str = "qcow2"
    device: str = "disk"  # "disk" or "cdrom"
    read_only: bool = False
    # Where it comes in the boot order (1 first); a domain gives either every bootable disk an
    # order or none (then it boots from the first disk).
    boot_order: int | None = None


DISK_BUSES = frozenset({"virtio", "ide", "scsi", "usb", "sata"})
DISK_DEVICES = frozenset({"disk", "cdrom"})


def xml_text(value: object, limit: int | None = METADATA_TEXT_LIMIT) -> str:
    """Return `value` as text XML 1.0 can carry, cut to `limit` characters (None: no cut)."""
    text = _NOT_XML_TEXT.sub(_REPLACEMENT, str(value))
    return text if limit is None else text[:limit]


def canonical_uuid(value: str) -> str:
    """The lower-case hyphenated form, which is also the domain name; anything else is refused so
    a hostile "uuid" can never become a domain name or path component."""
    try:
        parsed = uuid.UUID(str(value))
    except ValueError:
        raise ValueError(f"not a UUID: {xml_text(value, 80)!r}") from None
    return str(parsed)


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrib: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrib)
    if text is not None:
        element.text = text
    return element


def build_domain_xml(
    request: SpawnRequest,
    *,
    domain_type: str,
    vnc_listen: str = "127.0.0.1",
    disks: Sequence[DiskSpec] = (),
    serial_log_path: str | None = None,
    mac_addresses: Sequence[str | Nic] = (),
    video_model: str | None = None,
    machine: str | None = None,
    vnc_socket: str | None = None,
    rescue: bool = False,
    block_devices: Sequence[BlockDevice] = (),
) -> str:
    """Return the persistent domain definition for `request` as a string.

    `domain_type` is the hypervisor's word for itself ("test" for libvirt's test driver, "qemu"
    for TCG, "kvm"); the caller picks it because only the caller knows which one works on its host.
    Each of `mac_addresses` becomes a NIC: a MAC alone (or a Nic of kind "user") a user-mode
    (slirp) one, where the guest reaches out but nothing reaches in; a Nic of kind "bridge" a tap
    in the port's bridge, which the network driver (compute_agent.network) made beforehand. `machine` pins the machine type ("pc" has the
    IDE bus the config drive's cdrom sits on). With `vnc_socket` the VNC server listens on that
    unix socket instead of a TCP port. `rescue` marks the definition as the guest's rescue one
    (is_rescue reads it back), so a repeated rescue or unrescue can tell what is defined.
    Each of `block_devices` is a volume qemu reaches itself over the network (volume_disk); one
    with boot_index 0 is the disk the guest boots from.
    """
    if domain_type not in DOMAIN_TYPES:
        raise ValueError(f"domain type must be one of {sorted(DOMAIN_TYPES)}, got {domain_type!r}")
    listen_address = ipaddress.ip_address(vnc_listen)
    if listen_address.is_unspecified:
        # An unauthenticated VNC display on every interface is anyone's console: loopback or
        # the host's management address only, reached through the console proxy.
        raise ValueError(f"VNC must not listen on every interface ({vnc_listen})")
    listen = str(listen_address)
    instance_uuid = canonical_uuid(request.instance_uuid)
    memory_kib = _positive_int("memory_mb", request.memory_mb) * 1024
    vcpus = _positive_int("vcpus", request.vcpus)

    domain = ET.Element("domain", {"type": domain_type})
    _sub(domain, "name", instance_uuid)
    _sub(domain, "uuid", instance_uuid)

    metadata = _sub(domain, "metadata")
    instance = _sub(metadata, f"{{{KUMO_XMLNS}}}instance")
    _sub(instance, f"{{{KUMO_XMLNS}}}name", xml_text(request.name))
    _sub(instance, f"{{{KUMO_XMLNS}}}request-id", xml_text(request.request_id))
    if rescue:
        _sub(instance, RESCUE_TAG)

    _sub(domain, "memory", str(memory_kib), unit="KiB")
    _sub(domain, "currentMemory", str(memory_kib), unit="KiB")
    _sub(domain, "vcpu", str(vcpus))

    # The guest can read these (dmi product_serial / product_uuid) to learn which instance it is.
    sysinfo = _sub(domain, "sysinfo", type="smbios")
    system = _sub(sysinfo, "system")
    _sub(system, "entry", "Kumo", name="manufacturer")
    # cloud-init recognises an OpenStack platform (and then asks its metadata service at
    # 169.254.169.254) by this product name, as Nova's guests show "OpenStack Nova".
    _sub(system, "entry", "OpenStack Compute", name="product")
    _sub(system, "entry", instance_uuid, name="serial")
    _sub(system, "entry", instance_uuid, name="uuid")

    os_element = _sub(domain, "os")
    os_type = _sub(os_element, "type", "hvm")
    if machine is not None:
        os_type.set("machine", _token("machine", machine))
    boots_from_volume = any(device.boot_index == 0 for device in block_devices)
    if not boots_from_volume and not any(disk.boot_order for disk in disks):
        _sub(os_element, "boot", dev="hd")
    _sub(os_element, "smbios", mode="sysinfo")

    features = _sub(domain, "features")
    _sub(features, "acpi")  # without ACPI a guest cannot be asked to shut down gracefully
    _sub(features, "apic")

    _sub(domain, "clock", offset="utc")
    _sub(domain, "on_poweroff", "destroy")
    _sub(domain, "on_reboot", "restart")
    _sub(domain, "on_crash", "destroy")

    devices = _sub(domain, "devices")
    if any(disk.bus == "scsi" for disk in disks):
        _sub(devices, "controller", type="scsi", index="0", model="virtio-scsi")
    for disk in disks:
        _add_disk(devices, disk)
    for device in block_devices:
        devices.append(volume_disk(device))
    for mac in mac_addresses:
        devices.append(_interface(mac))
    serial = _sub(devices, "serial", type="pty")
    if serial_log_path is not None:
        _sub(serial, "log", file=xml_text(serial_log_path, None), append="off")
    _sub(serial, "target", port="0")
    console = _sub(devices, "console", type="pty")
    _sub(console, "target", type="serial", port="0")
    if vnc_socket is None:
        graphics = _sub(devices, "graphics", type="vnc", port="-1", autoport="yes", listen=listen)
        _sub(graphics, "listen", type="address", address=listen)
    else:
        graphics = _sub(devices, "graphics", type="vnc")
        _sub(graphics, "listen", type="socket", socket=_socket_path(vnc_socket))
    if video_model is not None:
        video = _sub(devices, "video")
        _sub(video, "model", type=_token("video model", video_model))
    if domain_type != "test":
        # A guest with a balloon driver then tells how much of its memory it does not use, every
        # 10 s: its own view of "used" in the statistics report (compute_agent.guest_stats),
        # where otherwise only qemu's resident memory on the host is known.
        balloon = _sub(devices, "memballoon", model="virtio")
        _sub(balloon, "stats", period="10")

    return ET.tostring(domain, encoding="unicode")


# sockaddr_un holds 108 bytes with the terminating NUL.
UNIX_SOCKET_PATH_MAX = 107


def _socket_path(path: str) -> str:
    if not path.startswith("/") or _NOT_XML_TEXT.search(path):
        raise ValueError(f"VNC socket {xml_text(path, 80)!r} is not an absolute path")
    if len(os.fsencode(path)) > UNIX_SOCKET_PATH_MAX:
        raise ValueError(f"VNC socket path {path!r} is longer than a unix socket allows "
                         f"({UNIX_SOCKET_PATH_MAX} bytes)")
    return path


_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
_TOKEN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


def _mac(value: str) -> str:
    mac = str(value).lower()
    if not _MAC.match(mac):
        raise ValueError(f"not a MAC address: {xml_text(value, 40)!r}")
    return mac


def _token(name: str, value: str) -> str:
    if not _TOKEN.match(value):
        raise ValueError(f"{name} {xml_text(value, 40)!r} is not a plain name")
    return value


def _add_disk(devices: ET.Element, disk: DiskSpec) -> None:
    if disk.bus not in DISK_BUSES or disk.device not in DISK_DEVICES:
        raise ValueError(f"a {disk.device!r} disk on bus {disk.bus!r} is not supported")
    element = _sub(devices, "disk", type="file", device=disk.device)
    _sub(element, "driver", name="qemu", type=disk.driver_type)
    _sub(element, "source", file=xml_text(disk.path, None))
    _sub(element, "target", dev=_token("target device", disk.target_dev), bus=disk.bus)
    if disk.boot_order is not None:
        _sub(element, "boot", order=str(_positive_int("boot order", disk.boot_order)))
    if disk.read_only:
        _sub(element, "readonly")


# --- volumes (docs/volumes.md): a disk qemu opens over the network, not a file on this host

VOLUME_PROTOCOLS = frozenset({"nbd"})
_HOST_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$")


def _volume_host(value: object) -> str:
    text = str(value)
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        if not _HOST_NAME.match(text):
            raise ValueError(f"volume host {xml_text(text, 80)!r} is not an address") from None
        return text


def _port(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise ValueError(f"volume port must be 1-65535, got {value!r}")
    return value


def volume_disk(device: BlockDevice) -> ET.Element:
    """A volume as a guest's disk: qemu connects to its NBD export itself (raw: the volume host
    serves the qcow2's guest view), no host page cache (a live migration's two qemus share the
    export), and the volume id as the disk's serial (/dev/disk/by-id in the guest)."""
    connection = device.connection or {}
    kind = connection.get("driver_volume_type")
    if kind not in VOLUME_PROTOCOLS:
        raise ValueError(f"volume {xml_text(device.volume_id, 40)!r}: a {kind!r} connection is "
                         "not supported")
    if device.bus not in DISK_BUSES:
        raise ValueError(f"a volume on bus {device.bus!r} is not supported")
    export = str(connection.get("export") or "")
    if not export or _NOT_XML_TEXT.search(export):
        raise ValueError(f"volume {xml_text(device.volume_id, 40)!r} names no export")
    element = ET.Element("disk", {"type": "network", "device": "disk"})
    _sub(element, "driver", name="qemu", type="raw", cache="none")
    source = _sub(element, "source", protocol=str(kind), name=export)
    _sub(source, "host", name=_volume_host(connection.get("host")),
         port=str(_port(connection.get("port"))))
    _sub(element, "target", dev=_token("target device", device.device), bus=device.bus)
    _sub(element, "serial", xml_text(device.volume_id, 64))
    if device.boot_index == 0:
        _sub(element, "boot", order="1")
    return element


def volume_disk_xml(device: BlockDevice) -> str:
    return ET.tostring(volume_disk(device), encoding="unicode")


def volume_disks(domain_xml: str) -> dict[str, str]:
    """A definition's volumes as they are written there, by volume id (their serial): what
    detaching one must name."""
    root = ET.fromstring(domain_xml)
    found = {}
    for disk in root.findall("devices/disk[@type='network']"):
        serial = disk.findtext("serial")
        if serial:
            found[serial] = ET.tostring(disk, encoding="unicode")
    return found


def disk_targets(domain_xml: str) -> list[str]:
    """The target devices (vda, hdc…) of a definition's disks."""
    root = ET.fromstring(domain_xml)
    return [str(t.get("dev")) for t in root.findall("devices/disk/target") if t.get("dev")]


def local_disk_targets(domain_xml: str) -> list[str]:
    """The target devices of the writable file disks: what a live migration copies (the root
    disk; never the read-only config drive, which the destination builds, nor a volume)."""
    root = ET.fromstring(domain_xml)
    return [str(disk.find("target").get("dev"))  # type: ignore[union-attr]
            for disk in root.findall("devices/disk[@type='file'][@device='disk']")
            if disk.find("target") is not None and disk.find("readonly") is None]


def with_volume(domain_xml: str, device: BlockDevice) -> str:
    """The definition with the volume as a disk (replacing any it had under the same id)."""
    root = ET.fromstring(without_volume(domain_xml, device.volume_id))
    devices = root.find("devices")
    if devices is None:
        devices = _sub(root, "devices")
    devices.append(volume_disk(device))
    return ET.tostring(root, encoding="unicode")


def without_volume(domain_xml: str, volume_id: str) -> str:
    """The definition without the volume's disk."""
    root = ET.fromstring(domain_xml)
    devices = root.find("devices")
    if devices is not None:
        for disk in devices.findall("disk[@type='network']"):
            if disk.findtext("serial") == volume_id:
                devices.remove(disk)
    return ET.tostring(root, encoding="unicode")


# --- reading and editing a definition libvirt gave back (rescue, ports)

RESCUE_TAG = f"{{{KUMO_XMLNS}}}rescue"


_DEVICE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,14}$")  # a Linux interface name


def _device(what: str, value: str) -> str:
    if not _DEVICE.match(value):
        raise ValueError(f"{what} {xml_text(value, 40)!r} is not an interface name")
    return value


def _nic_mac(nic: str | Nic) -> str:
    return _mac(nic if isinstance(nic, str) else nic.mac_address)


def _interface(nic: str | Nic) -> ET.Element:
    if isinstance(nic, str) or nic.kind == "user":
        interface = ET.Element("interface", {"type": "user"})
        _sub(interface, "mac", address=_nic_mac(nic))
        _sub(interface, "model", type="virtio")
        return interface
    if nic.kind != "bridge":
        raise ValueError(f"a NIC of kind {nic.kind!r} is not supported")
    interface = ET.Element("interface", {"type": "bridge"})
    _sub(interface, "source", bridge=_device("bridge", nic.bridge))
    _sub(interface, "target", dev=_device("tap", nic.tap))
    _sub(interface, "mac", address=_nic_mac(nic))
    _sub(interface, "model", type="virtio")
    if nic.mtu is not None:
        _sub(interface, "mtu", size=str(_positive_int("mtu", nic.mtu)))
    return interface


def interface_xml(nic: str | Nic) -> str:
    """One NIC as build_domain_xml makes them, for attaching or detaching it alone."""
    return ET.tostring(_interface(nic), encoding="unicode")


def interface_macs(domain_xml: str) -> list[str]:
    """The MAC addresses of a definition's NICs, in order, lower case."""
    root = ET.fromstring(domain_xml)
    return [str(mac.get("address", "")).lower() for mac in root.findall("devices/interface/mac")]


def with_interfaces(domain_xml: str, nics: Sequence[str | Nic]) -> str:
    """The definition with exactly the NICs of `nics` (MACs or Nics, as build_domain_xml takes
    them): those it has and keeps stay as they are (with their PCI addresses), the others are
    added or removed."""
    by_mac = {_nic_mac(nic): nic for nic in nics}
    wanted = list(by_mac)
    root = ET.fromstring(domain_xml)
    devices = root.find("devices")
    if devices is None:
        devices = _sub(root, "devices")
    for interface in devices.findall("interface"):
        element = interface.find("mac")
        if element is None or str(element.get("address", "")).lower() not in wanted:
            devices.remove(interface)
    have = interface_macs(ET.tostring(root, encoding="unicode"))
    for mac in wanted:
        if mac not in have:
            devices.append(_interface(by_mac[mac]))
    return ET.tostring(root, encoding="unicode")


def is_rescue(domain_xml: str) -> bool:
    """Whether the definition is a rescue one (build_domain_xml's `rescue`, or marked_rescue)."""
    root = ET.fromstring(domain_xml)
    return root.find(f"metadata/{{{KUMO_XMLNS}}}instance/{RESCUE_TAG}") is not None


def marked_rescue(domain_xml: str) -> str:
    """The definition marked as a rescue one; what a rescue changes on a host without disks."""
    root = ET.fromstring(domain_xml)
    metadata = root.find("metadata")
    if metadata is None:
        metadata = _sub(root, "metadata")
    instance = metadata.find(f"{{{KUMO_XMLNS}}}instance")
    if instance is None:
        instance = _sub(metadata, f"{{{KUMO_XMLNS}}}instance")
    if instance.find(RESCUE_TAG) is None:
        _sub(instance, RESCUE_TAG)
    return ET.tostring(root, encoding="unicode")


def interface_elements(domain_xml: str) -> dict[str, str]:
    """A definition's NICs as they are written there, by MAC (lower case): what detaching one
    must name."""
    root = ET.fromstring(domain_xml)
    found = {}
    for interface in root.findall("devices/interface"):
        mac = interface.find("mac")
        if mac is not None:
            found[str(mac.get("address", "")).lower()] = ET.tostring(interface, encoding="unicode")
    return found
