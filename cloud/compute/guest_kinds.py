"""Virtual machines and containers (issue 19): which kind a server is, and what a container refuses.

A server is a container when its host runs libvirt's LXC driver (the host reports hypervisor_type
LXC); a server on no host (still being scheduled, or shelved off one) is what its image asks for
(Glance's `hypervisor_type=lxc`, the property the scheduler's ImagePropertiesFilter places it by).
Nothing about the kind is stored on the instance: a host never changes kind under its servers, and
the image is only the fallback, so a deleted image leaves a placed server's kind known.

What a container refuses follows what the compute agent can do with it today
(compute_agent/drivers/libvirt/driver.py and containers.py), so the API and the dashboard say so
with a 409 before anything is sent to a host, instead of the host failing the task later.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cloud import errors
from cloud.ids import parse_uuid
from cloud.images import images as image_services
from cloud.images.models import Image

from .models import ComputeNode, Instance

CONTAINER, VM = "container", "vm"
# The host's hypervisor_type as libvirt names the LXC driver, and the image property's value;
# QEMU is what every other host runs (the fake and test drivers count as such).
LXC, QEMU = "lxc", "qemu"
# Names an image may give for a virtual machine host (Nova's hv_type aliases for the same thing).
_VM_NAMES = frozenset({"qemu", "kvm"})
# Nova's vm modes: a container's (exe) and a virtual machine's with full virtualization (hvm).
_MODES = {"exe": LXC, "hvm": QEMU}

_NO_DISK = ("it has no disk image: its root filesystem is an overlay of its image's files on "
            "the host")
# Operation name (cloud/compute/operations.py) -> why a container cannot do it.
REFUSED: dict[str, str] = {
    # A resize is not here: a container is resized on its own host, its limits redefined (its
    # root filesystem has no size to grow); with no room there, cloud/scheduler/moves.py answers
    # 409 instead of moving it.
    "migrate": "libvirt's LXC driver cannot migrate a container to another host",
    "live_migrate": "libvirt's LXC driver cannot migrate a container to another host",
    "rescue": f"a container cannot be rescued: {_NO_DISK} and no rescue disk to boot from",
    "suspend": ("libvirt's LXC driver cannot save a container's memory to disk (no managed "
                "save); pause freezes it instead"),
    # A volume is a network disk (iSCSI) that qemu's own client opens (compute_agent/domain_xml.py).
    "attach_volume": ("libvirt's LXC driver cannot attach a volume: a volume is a network disk "
                      "that only qemu opens"),
    "trigger_crash_dump": ("a container has no kernel of its own to dump (libvirt's LXC driver "
                           "injects no NMI)"),
}
# How an image of a server's root is registered (a snapshot, a backup or a shelve): a VM's is
# its disk, as qemu-img copies it; a container's is a gzip'd tar of its root filesystem as it is
# now (its image's files and its own changes, compute_agent/container_rootfs.archive), which
# boots only as a container, so it carries the property the scheduler places it by.
_VM_IMAGE = {"disk_format": "qcow2", "container_format": "bare"}
_CONTAINER_IMAGE = {"disk_format": "raw", "container_format": "compressed",
                    "hypervisor_type": LXC}
# A remote console (VNC, SPICE, serial, RDP, MKS): the key refuse_for_container takes for it.
REMOTE_CONSOLE = "remote_console"
CONSOLE_REASON = ("a container has no screen and no console this cloud can connect to; its text "
                  "console is its console log (os-getConsoleOutput, `openstack console log show`)")


def _host_kinds(hosts: set[str]) -> dict[str, bool]:
    """Of the hosts that reported, whether each runs containers."""
    if not hosts:
        return {}
    return {
        host: (kind or "").lower() == LXC for host, kind in
        ComputeNode.objects.filter(host__in=hosts).values_list("host", "hypervisor_type")
    }


def image_property(properties: dict | None, *names: str) -> str:
    """The first of `names` an image's properties give, lower-case; empty when none does."""
    for name in names:
        value = (properties or {}).get(name)
        if value:
            return str(value).strip().lower()
    return ""


def kind_wanted(properties: dict | None) -> str:
    """The kind of host an image's properties ask for: LXC, QEMU (also when they say nothing: a
    disk), or else one no host is — a name this cloud has no host of, or a hypervisor type and a
    vm mode that contradict each other, worded as the image gives them. Glance's
    `hypervisor_type` (Nova's `img_hv_type`, of which it is the legacy name) or `hw_vm_mode`
    (`vm_mode`) say it; the scheduler's ImagePropertiesFilter places by it."""
    named = image_property(properties, "img_hv_type", "hypervisor_type")
    mode = image_property(properties, "hw_vm_mode", "vm_mode")
    if not named:
        return _MODES.get(mode, f"hw_vm_mode={mode}") if mode else QEMU
    kind = QEMU if named in _VM_NAMES else named
    if mode and _MODES.get(mode) != kind:
        return f"hypervisor_type={kind}, hw_vm_mode={mode}"
    return kind


def image_is_for_containers(properties: dict | None) -> bool:
    """Whether an image's properties ask for a container host."""
    return kind_wanted(properties) == LXC


def _container_images(refs: Iterable[str]) -> set[str]:
    valid = {str(u) for u in (parse_uuid(r) for r in refs if r) if u is not None}
    if not valid:
        return set()
    return {
        str(pk) for pk, props in Image.objects.filter(pk__in=valid)
        .values_list("pk", "properties")
        if image_is_for_containers(props)
    }


def containers(instances: Iterable[Instance]) -> set[str]:
    """The uuids (as strings) of those of `instances` that are containers, in at most two
    queries whatever their number (a table's page)."""
    instances = list(instances)
    hosts = _host_kinds({i.host for i in instances if i.host})
    # A host that never reported says nothing yet: its servers are what their images ask for.
    unplaced = [i for i in instances if not i.host or i.host not in hosts]
    lxc_images = _container_images(i.image_ref for i in unplaced)
    by_image = {str(i.uuid) for i in unplaced if _image_key(i) in lxc_images}
    return {str(i.uuid) for i in instances if i.host and hosts.get(i.host)} | by_image


def _image_key(instance: Instance) -> str:
    parsed = parse_uuid(instance.image_ref) if instance.image_ref else None
    return str(parsed) if parsed is not None else ""


def is_container(instance: Instance) -> bool:
    return str(instance.uuid) in containers([instance])


def kind(instance: Instance) -> str:
    """CONTAINER or VM."""
    return CONTAINER if is_container(instance) else VM


def refusal(action: str) -> str | None:
    """Why a container cannot do `action` (an operation's name or REMOTE_CONSOLE), or None."""
    return CONSOLE_REASON if action == REMOTE_CONSOLE else REFUSED.get(action)


def refuse_for_container(instance: Instance, action: str, shown: str | None = None) -> None:
    """409 in Nova's words ("Cannot 'createImage' instance …: <why>") when `instance` is a
    container and `action` is something a container cannot do; `shown` is the name the message
    uses (the operation's Nova name), `action` by default."""
    reason = refusal(action)
    if reason is None or not is_container(instance):
        return
    raise errors.Conflict(f"Cannot '{shown or action}' instance {instance.uuid}: {reason}.")


# Image properties that decide which kind of host an image boots on (kind_wanted).
KIND_PROPERTIES = frozenset({"hypervisor_type", "img_hv_type", "hw_vm_mode", "vm_mode"})


def saved_image_fields(instance: Instance, metadata: dict[str, Any] | None = None
                       ) -> dict[str, Any]:
    """What an image its host uploads the server's root into is registered with, beyond its
    name and origin: the user's `metadata` (less Glance's core fields), then the formats and,
    for a container, hypervisor_type. A user's kind-deciding properties stay only on a VM's
    image and only when they ask for a VM host: a user can neither make a container's tar look
    like a disk (or contradict its kind, leaving it no host) nor send a VM's disk to container
    hosts."""
    fields = {k: v for k, v in (metadata or {}).items() if k not in image_services.CORE}
    container = is_container(instance)
    if container or kind_wanted(fields) != QEMU:
        fields = {k: v for k, v in fields.items() if k not in KIND_PROPERTIES}
    fields.update(_CONTAINER_IMAGE if container else _VM_IMAGE)
    return fields


def ensure_image_fits(instance: Instance, image: Image) -> None:
    """400 when a rebuild names an image of the other kind: its host could only fail it (an LXC
    host cannot boot a disk image, a qemu host cannot boot a root filesystem's tar)."""
    for_containers = image_is_for_containers(image.properties)
    if for_containers == is_container(instance):
        return
    wanted, actual = ("containers", "a virtual machine") if for_containers else (
        "virtual machines", "a container")
    raise errors.BadRequest(
        f"Image {image.id} is for {wanted} (hypervisor_type "
        f"{image.properties.get('hypervisor_type') or 'unset'}) and server {instance.uuid} is "
        f"{actual}: a server is rebuilt only from an image of its own kind.")
