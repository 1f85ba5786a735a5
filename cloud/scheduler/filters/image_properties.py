"""Which kind of guest a host runs against which kind the image is for.

A host runs either virtual machines (qemu; the fake and test drivers count as such) or system
containers (libvirt's LXC driver), as its agent reports in hypervisor_type. An image says which it
is for in Glance's `hypervisor_type` property (Nova's ImagePropertiesFilter reads the same key);
an image without it, and a server booted from a volume, is a virtual machine's disk, so it never
lands on a container host, and a container's root filesystem never lands on a qemu host.
"""

from __future__ import annotations

import time

from cloud.compute.models import ComputeNode
from cloud.images.models import Image
from cloud.scheduler.host_state import HostState, RequestSpec

LXC, QEMU = "lxc", "qemu"
# Names an image may give for a virtual machine host (Nova's hv_type aliases for the same thing).
_VM_NAMES = frozenset({"qemu", "kvm"})

# How long a looked-up answer is trusted. Decisions come many a second; a host's kind and an
# image's property change only when an operator reconfigures one, and a wrong guess is caught by
# the agent refusing the boot, which reschedules it.
_TTL = 30.0
_images: dict[str, tuple[float, str]] = {}
_nodes: dict[int, str] = {}
_nodes_read = 0.0


def host_kind(host: HostState) -> str:
    """`lxc` for a container host, `qemu` for any other."""
    reported = host.hypervisor_type if host.hypervisor_type is not None else _node_type(host)
    return LXC if reported.lower() == LXC else QEMU


def image_wants(spec: RequestSpec) -> str:
    """The kind of host the request's image needs: `lxc`, `qemu`, or the unknown name it gave."""
    props = spec.image_properties
    if props is None:
        props = {"hypervisor_type": _image_type(spec.image_ref)} if spec.image_ref else {}
    wanted = str(props.get("hypervisor_type") or QEMU).lower()
    return QEMU if wanted in _VM_NAMES else wanted


class ImagePropertiesFilter:
    """Passes a host whose kind (qemu or lxc) is the one the image's hypervisor_type asks for;
    an image that names none asks for qemu."""

    def host_passes(self, host: HostState, spec: RequestSpec) -> bool:
        return host_kind(host) == image_wants(spec)

    def reason(self, host: HostState, spec: RequestSpec) -> str:
        wanted = image_wants(spec)
        asked = "image" if spec.image_ref or spec.image_properties else "volume boot"
        return f"Image: {asked} wants hypervisor_type={wanted}; host runs {host_kind(host)}"


def _image_type(image_ref: str) -> str:
    now = time.monotonic()
    cached = _images.get(image_ref)
    if cached is not None and now - cached[0] < _TTL:
        return cached[1]
    props = Image.objects.filter(pk=image_ref).values_list("properties", flat=True).first()
    wanted = str((props or {}).get("hypervisor_type") or "")
    _images[image_ref] = (now, wanted)
    return wanted


def _node_type(host: HostState) -> str:
    # Every node's type in one query, read again when stale or when a new node appears.
    global _nodes_read
    now = time.monotonic()
    if host.node_id not in _nodes or now - _nodes_read >= _TTL:
        _nodes.clear()
        _nodes.update(ComputeNode.objects.values_list("pk", "hypervisor_type"))
        _nodes_read = now
    return _nodes.get(host.node_id, "")


def forget() -> None:
    """Drop what was looked up (tests; an operator's change is otherwise seen within _TTL)."""
    global _nodes_read
    _images.clear()
    _nodes.clear()
    _nodes_read = 0.0
