"""Which kind of guest a host runs against which kind the image is for (Nova's ImagePropertiesFilter).

A host runs either virtual machines (qemu; the fake and test drivers count as such) or system
containers (libvirt's LXC driver), as its agent reports in hypervisor_type. What an image is for
is the domain's answer (cloud/compute/guest_kinds.kind_wanted: Glance's `hypervisor_type`, Nova's
`img_hv_type`, or `hw_vm_mode`: `exe` a container's, `hvm` a virtual machine's), the same one the
API goes by for a server not yet placed. An image that says neither, and a server booted from a volume, is a virtual machine's disk, so it
never lands on a container host (where Nova would let it pass: Nova has no hosts that cannot run
a disk), and a container's root filesystem never lands on a qemu host.

An image's `hw_architecture` (`architecture`) must be the host CPU's architecture, when the host
reports one, as in Nova.

Pure: what it reads comes with the host's row (host_state.HOST_COLUMNS) and with the request spec
(RequestSpec.image_properties), so it costs no query; the shortlist query applies the kind of host
in SQL already (prefilter.py), and this filter still runs over what it returns, so a host of the
other kind is named here when no host fits (a fault, the dry run: explain.py).
"""

from __future__ import annotations

from cloud.compute.guest_kinds import LXC, QEMU, image_property, kind_wanted
from cloud.scheduler.host_state import HostState, RequestSpec

# Spellings of one architecture (Nova's obj.fields.Architecture.canonicalize, in part).
_ARCH_ALIASES = {"amd64": "x86_64", "x64": "x86_64", "i386": "i686", "i486": "i686",
                 "i586": "i686", "x86": "i686", "arm64": "aarch64", "armv8": "aarch64",
                 "ppc64el": "ppc64le"}


def host_kind(host: HostState) -> str:
    """`lxc` for a container host, `qemu` for any other (one that did not say too)."""
    return LXC if (host.hypervisor_type or "").lower() == LXC else QEMU


def host_kind_wanted(spec: RequestSpec) -> str:
    """The kind of host the request's image needs (guest_kinds.kind_wanted: `lxc`, `qemu`, or
    else one no host is)."""
    return kind_wanted(spec.image_properties)


def _arch(value: str | None) -> str:
    name = (value or "").strip().lower()
    return _ARCH_ALIASES.get(name, name)


def arch_wanted(spec: RequestSpec) -> str:
    """The CPU architecture the image is for; empty: any."""
    return _arch(image_property(spec.image_properties, "hw_architecture", "architecture"))


# The last request's answer, by its properties' identity (the memo holds them, so the identity is
# not reused): a filter pass asks it once per host, and working it out each time was most of the
# pass's cost (27 µs for a shortlist of 32).
_last: tuple[dict | None, tuple[str, str]] = (None, (QEMU, ""))


def _wants(spec: RequestSpec) -> tuple[str, str]:
    global _last
    props = spec.image_properties or None
    last = _last  # read once: another thread (the worker's) may replace it meanwhile
    if props is last[0]:
        return last[1]
    answer = (host_kind_wanted(spec), arch_wanted(spec))
    _last = (props, answer)
    return answer


class ImagePropertiesFilter:
    """Passes a host whose kind (qemu or lxc) is the one the image asks for (a virtual machine's
    unless it says otherwise) and whose CPU architecture, when both say one, is the image's."""

    def host_passes(self, host: HostState, spec: RequestSpec) -> bool:
        kind, arch = _wants(spec)
        if host_kind(host) != kind:
            return False
        return not arch or not host.cpu_arch or _arch(host.cpu_arch) == arch

    def reason(self, host: HostState, spec: RequestSpec) -> str:
        asked = "image" if spec.image_ref else "volume boot"
        wanted = host_kind_wanted(spec)
        if host_kind(host) != wanted:
            words = wanted if "=" in wanted else f"hypervisor_type={wanted}"
            return f"Image: {asked} wants {words}; host runs {host_kind(host)}"
        return (f"Image: {asked} wants hw_architecture={arch_wanted(spec)}; host's CPU is "
                f"{_arch(host.cpu_arch)}")
