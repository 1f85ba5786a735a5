"""The libvirt domain XML for a container (libvirt's LXC driver), built as an element tree.

A container shares the host's kernel: its "disk" is a directory (the instance's copy-on-write view
of the image's root filesystem, compute_agent.container_rootfs) mounted as its `/`, and libvirt
starts `init` in it. The flavor's memory becomes the memory cgroup's limit and its vCPUs the CPU
cgroup's shares (1024 per vCPU, as libvirt weighs a VM's vCPUs), so a container gets the same
share of a busy host as a VM of its flavor.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence

from compute_agent.domain_xml import (
    KUMO_XMLNS,
    _device,
    _nic_mac,
    _positive_int,
    _sub,
    canonical_uuid,
    xml_text,
)
from compute_agent.messages import SpawnRequest
from compute_agent.network.base import Nic

DOMAIN_TYPE = "lxc"
DEFAULT_INIT = "/sbin/init"
CPU_SHARES_PER_VCPU = 1024


def build_container_xml(
    request: SpawnRequest,
    *,
    rootfs: str,
    nics: Sequence[Nic] = (),
    init: str = DEFAULT_INIT,
) -> str:
    """Return the persistent definition of `request` as a container whose `/` is `rootfs`.

    Each of `nics` must be a bridge Nic: libvirt makes a veth pair and puts the host end in the
    bridge, named as the port's tap (<target dev>) as a VM's tap is, so the port's rules hold
    for it; where libvirt names it otherwise the agent renames it after the start
    (veths_to_name, compute_agent.network.veth). The container always gets a network namespace of its own (privnet), so one without
    NICs is cut off rather than sharing the host's. Its init learns its hostname and id from the
    environment (KUMO_HOSTNAME, KUMO_INSTANCE_UUID); libvirt adds LIBVIRT_LXC_UUID too.
    """
    instance_uuid = canonical_uuid(request.instance_uuid)
    memory_kib = _positive_int("memory_mb", request.memory_mb) * 1024
    vcpus = _positive_int("vcpus", request.vcpus)
    rootfs = _absolute("root filesystem", rootfs)
    init = _absolute("init", init)

    domain = ET.Element("domain", {"type": DOMAIN_TYPE})
    _sub(domain, "name", instance_uuid)
    _sub(domain, "uuid", instance_uuid)
    metadata = _sub(domain, "metadata")
    instance = _sub(metadata, f"{{{KUMO_XMLNS}}}instance")
    _sub(instance, f"{{{KUMO_XMLNS}}}name", xml_text(request.name))
    _sub(instance, f"{{{KUMO_XMLNS}}}request-id", xml_text(request.request_id))

    _sub(domain, "memory", str(memory_kib), unit="KiB")
    _sub(domain, "currentMemory", str(memory_kib), unit="KiB")
    _sub(domain, "vcpu", str(vcpus))
    cputune = _sub(domain, "cputune")
    _sub(cputune, "shares", str(CPU_SHARES_PER_VCPU * vcpus))

    os_element = _sub(domain, "os")
    _sub(os_element, "type", "exe")
    _sub(os_element, "init", init)
    _sub(os_element, "initenv", _hostname(request.hostname or request.name),
         name="KUMO_HOSTNAME")
    _sub(os_element, "initenv", instance_uuid, name="KUMO_INSTANCE_UUID")

    features = _sub(domain, "features")
    _sub(features, "privnet")

    _sub(domain, "clock", offset="utc")
    _sub(domain, "on_poweroff", "destroy")
    _sub(domain, "on_reboot", "restart")
    _sub(domain, "on_crash", "destroy")

    devices = _sub(domain, "devices")
    filesystem = _sub(devices, "filesystem", type="mount", accessmode="passthrough")
    _sub(filesystem, "source", dir=rootfs)
    _sub(filesystem, "target", dir="/")
    for nic in nics:
        devices.append(_interface(nic))
    console = _sub(devices, "console", type="pty")
    _sub(console, "target", type="lxc", port="0")
    return ET.tostring(domain, encoding="unicode")


def is_container(domain_xml: str) -> bool:
    return ET.fromstring(domain_xml).get("type") == DOMAIN_TYPE


def veths_to_name(defined_xml: str, live_xml: str) -> list[tuple[str, str, str]]:
    """(current, wanted, bridge) for each NIC of a running container whose host end is not named
    as its definition asks: `defined_xml` is the persistent definition (each bridge interface's
    <target dev> is its port's tap), `live_xml` the running domain's, where <target dev> is the
    name the veth got. NICs are paired by MAC, the one thing both descriptions share."""
    wanted = {}
    for interface in ET.fromstring(defined_xml).findall("devices/interface[@type='bridge']"):
        mac, dev = _interface_mac(interface), _target_dev(interface)
        source = interface.find("source")
        if mac and dev and source is not None and source.get("bridge"):
            wanted[mac] = (dev, source.get("bridge", ""))
    renames = []
    for interface in ET.fromstring(live_xml).findall("devices/interface[@type='bridge']"):
        mac, current = _interface_mac(interface), _target_dev(interface)
        if mac in wanted and current and current != wanted[mac][0]:
            renames.append((current, *wanted[mac]))
    return renames


def _interface_mac(interface: ET.Element) -> str:
    mac = interface.find("mac")
    return (mac.get("address") or "").lower() if mac is not None else ""


def _target_dev(interface: ET.Element) -> str:
    target = interface.find("target")
    return (target.get("dev") or "") if target is not None else ""


def _interface(nic: Nic) -> ET.Element:
    if isinstance(nic, str) or nic.kind != "bridge":
        kind = "a bare MAC" if isinstance(nic, str) else f"a NIC of kind {nic.kind!r}"
        raise ValueError(f"{kind} cannot be given to a container: it has no user-mode "
                         "networking, only veths in a bridge")
    interface = ET.Element("interface", {"type": "bridge"})
    _sub(interface, "source", bridge=_device("bridge", nic.bridge))
    _sub(interface, "mac", address=_nic_mac(nic))
    if nic.tap:
        _sub(interface, "target", dev=_device("tap", nic.tap))
    if nic.mtu is not None:
        _sub(interface, "mtu", size=str(_positive_int("mtu", nic.mtu)))
    return interface


def _absolute(what: str, path: str) -> str:
    if not path.startswith("/") or "\x00" in path or xml_text(path, None) != path:
        raise ValueError(f"{what} {xml_text(path, 80)!r} is not an absolute path")
    return path


def _hostname(value: str) -> str:
    # What the container's init hands to `hostname`: letters, digits and hyphens, 63 at most.
    cleaned = "".join(c if c.isascii() and (c.isalnum() or c == "-") else "-" for c in value)
    return cleaned.strip("-")[:63] or "container"
