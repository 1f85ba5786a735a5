"""What an uploaded image really is, decided in pure Python before anything runs qemu-img on it.

qemu-img believes what a file says about itself. A qcow2 header can name a backing file or an
external data file (`/etc/passwd`, another tenant's disk), a VMDK descriptor can name extent files
or a parent, and a file that parses as two formats is read one way here and another way by
whatever probes it later. So every upload is inspected while it streams to disk, and refused
(400) unless:

- its content is the format it was declared as (see ACCEPTED: raw may carry an MBR/GPT partition
  table, an ISO may carry one for USB boot; nothing else may differ);
- it matches one format only (a qcow2 header with an ISO volume descriptor inside is a polyglot);
- the format's safety checks pass: no qcow2 backing file, external data file or unknown
  incompatible feature; a VMDK is one self-contained sparse file with no parent and no other
  extent; a VHD is not a differencing disk;
- its virtual size is within KUMO_IMAGE_MAX_VIRTUAL_SIZE (default 1 TiB).

The parsers are oslo.utils' `format_inspector`, written for exactly this class of bug (VMDK flat
extents, CVE-2022-47951; qcow2 external data files, CVE-2024-32498) and maintained with Nova,
Glance and Cinder, which run it before qemu-img too; a parser of our own would repeat its mistakes
without its reviews. This module only decides what Kumo accepts, and adds two checks oslo.utils
(10.2) lacks: a VMDK's `parentFileNameHint` (which qemu-img follows as a backing file) and the VHD
differencing type. qemu refuses differencing VHDX and VDI images by itself, so those need nothing
here. oslo recognises a VHD by the footer copy at its start, which only dynamic VHDs have: a fixed
VHD reads as raw, and is accepted only as disk_format raw.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from os import PathLike

from django.conf import settings
from oslo_utils.imageutils import format_inspector as oslo

log = logging.getLogger(__name__)

DEFAULT_MAX_VIRTUAL_SIZE = 1024**4
# oslo's VMDK parser reads a text descriptor from whatever its first chunk holds (up to 1 MiB), so
# the verdict would depend on how the client happened to chunk its upload: the head is buffered
# and handed over in one piece.
HEAD_SIZE = 1024 * 1024
READ_SIZE = 1024 * 1024

_RAW = frozenset({"raw"})
_PARTITIONED = frozenset({"gpt"})  # oslo's name for any disk that starts with an MBR
_RAW_LIKE = (_RAW, _PARTITIONED)
# For each disk_format a client may declare, the sets of formats its content may match. A raw
# disk with a partition table is still raw to qemu; a hybrid ISO's MBR only lets it boot from a
# USB stick. Formats missing here (ploop) cannot be inspected, hence are not accepted.
ACCEPTED: dict[str, tuple[frozenset[str], ...]] = {
    "raw": _RAW_LIKE,
    # Kernel, ramdisk and machine images of the EC2 family are plain bytes too.
    "ami": _RAW_LIKE,
    "aki": _RAW_LIKE,
    "ari": _RAW_LIKE,
    "iso": (frozenset({"iso"}), frozenset({"iso", "gpt"})),
    "qcow2": (frozenset({"qcow2"}),),
    "vmdk": (frozenset({"vmdk"}),),
    "vhd": (frozenset({"vhd"}),),
    "vhdx": (frozenset({"vhdx"}),),
    "vdi": (frozenset({"vdi"}),),
}

_VHD_FIXED, _VHD_DYNAMIC = 2, 3
# What oslo's parsers raise on bytes they cannot read: ImageFormatError on purpose, the rest from
# unpacking hostile data. Anything else escapes and fails the upload (500, image back to queued).
_PARSER_ERRORS = (
    oslo.ImageFormatError,
    struct.error,
    ValueError,
    LookupError,
    TypeError,
    AttributeError,
    ArithmeticError,
    RuntimeError,
)
_VMDK_ACCESS = ("rw", "rdonly", "noaccess")


class ImageRejected(Exception):
    """The bytes are not what the image claims to be, or are not safe to hand to qemu-img. The
    message says why, in words meant for the person who uploaded it."""


@dataclass(frozen=True)
class Verdict:
    # What the bytes are, in oslo's names: "gpt" for a raw disk that starts with an MBR.
    content_format: str
    virtual_size: int


def max_virtual_size() -> int:
    return int(getattr(settings, "KUMO_IMAGE_MAX_VIRTUAL_SIZE", DEFAULT_MAX_VIRTUAL_SIZE))


class StreamInspector:
    """Inspects an image while its bytes pass through `watch()`; `verdict()` once they have.

    Refuses as early as the bytes allow (a qcow2 header that claims too large a disk, content that
    cannot be the declared format), so a hostile upload need not be written out in full.
    """

    def __init__(self, disk_format: str, limit: int | None = None) -> None:
        if disk_format not in ACCEPTED:
            raise ImageRejected(
                f"Images with disk_format {disk_format} cannot be inspected, so they are not "
                f"accepted; use one of {', '.join(sorted(ACCEPTED))}."
            )
        self.disk_format = disk_format
        self._raw_like = ACCEPTED[disk_format] is _RAW_LIKE
        self.limit = max_virtual_size() if limit is None else limit
        self._inspectors = {name: cls() for name, cls in oslo.ALL_FORMATS.items()}
        self._broken: dict[str, str] = {}  # inspector name → why it gave up on these bytes
        self._head: bytearray | None = bytearray()
        self._size = 0
        self._verdict: Verdict | None = None

    def watch(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        """Pass the chunks through unchanged; raise ImageRejected instead of a chunk that shows
        the image must be refused, or at the end instead of finishing. A consumer that writes
        the chunks to a temporary file therefore never completes a refused image."""
        for chunk in chunks:
            self.feed(chunk)
            yield chunk
        self.verdict()

    def feed(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if self._head is not None:
            self._head += chunk
            if len(self._head) < HEAD_SIZE:
                return
            chunk, self._head = bytes(self._head), None
        self._eat(chunk)
        self._refuse_early()

    def verdict(self) -> Verdict:
        """The decision on everything fed so far, taken as the whole image."""
        if self._verdict is None:
            self._finish()
            self._verdict = self._decide()
        return self._verdict

    # --- streaming

    def _eat(self, chunk: bytes) -> None:
        for name, inspector in self._inspectors.items():
            if name in self._broken:
                continue
            try:
                inspector.eat_chunk(chunk)
            except _PARSER_ERRORS as exc:
                # An inspector that cannot parse the bytes has found they are not its format.
                self._broken[name] = str(exc) or type(exc).__name__

    def _finish(self) -> None:
        if self._head:
            self._eat(bytes(self._head))
        self._head = None
        for inspector in self._inspectors.values():
            inspector.finish()

    def _refuse_early(self) -> None:
        if self._raw_like:
            # A raw disk is as large as its bytes, and those are coming in now.
            self._check_limit(self._size)
            return
        name = self.disk_format
        self._check_parsed(name)
        inspector = self._inspectors[name]
        if not _settled(inspector):
            return
        if not _matches(inspector):
            raise ImageRejected(
                f"Image data is not in {name} format, but its disk_format is {name}."
            )
        self._check_limit(_virtual_size(inspector))

    # --- the decision

    def _decide(self) -> Verdict:
        if not self._raw_like:
            self._check_parsed(self.disk_format)
        found = frozenset(
            name
            for name, inspector in self._inspectors.items()
            if name != "raw" and name not in self._broken and _matches(inspector)
        )
        found = found or _RAW
        if found not in ACCEPTED[self.disk_format]:
            if len(found) > 1:
                raise ImageRejected(
                    f"Image data is valid as more than one format ({', '.join(sorted(found))}); "
                    "such files are refused because each reader would see a different disk."
                )
            (actual,) = found
            raise ImageRejected(
                f"Image data is in {actual} format, but its disk_format is {self.disk_format}."
            )
        name = self._content_format(found)
        inspector = self._inspectors[name]
        _check_safety(inspector)
        if name == "vmdk":
            _check_vmdk(inspector)
        elif name == "vhd":
            _check_vhd(inspector)
        size = _virtual_size(inspector)
        if name == "iso" and not size:
            # A UDF volume carries no ISO 9660 size; qemu reads an ISO as raw bytes anyway.
            size = self._size
        self._check_limit(size)
        return Verdict(content_format=name, virtual_size=size)

    def _content_format(self, found: frozenset[str]) -> str:
        if self.disk_format == "iso":
            # The MBR of a hybrid ISO is boot code for USB sticks, not a second disk: its
            # partition entries point into the ISO itself, so only the ISO is checked.
            return "iso"
        if self._raw_like:
            (name,) = found
            return name
        return self.disk_format

    def _check_parsed(self, name: str) -> None:
        if name in self._broken:
            raise ImageRejected(
                f"Image data is not a valid {name} image: {self._broken[name]}."
            )

    def _check_limit(self, virtual_size: int) -> None:
        if virtual_size > self.limit:
            raise ImageRejected(
                f"Image virtual size {virtual_size} bytes exceeds the limit of "
                f"{self.limit} bytes."
            )


def inspect_file(
    path: str | PathLike[str], disk_format: str, limit: int | None = None
) -> Verdict:
    """The verdict on an image already on disk (ImageRejected when it must be refused)."""
    inspector = StreamInspector(disk_format, limit)
    with open(path, "rb") as data:
        while chunk := data.read(READ_SIZE):
            inspector.feed(chunk)
    return inspector.verdict()


def _settled(inspector: oslo.FileInspector) -> bool:
    try:
        return bool(inspector.complete)
    except _PARSER_ERRORS:
        return False


def _matches(inspector: oslo.FileInspector) -> bool:
    try:
        return bool(inspector.format_match)
    except _PARSER_ERRORS:
        # oslo's VMDK parser can fail here on text that is not a descriptor after all; a parser
        # that cannot read the bytes has not recognised them.
        return False


def _virtual_size(inspector: oslo.FileInspector) -> int:
    try:
        return int(inspector.virtual_size)
    except _PARSER_ERRORS as exc:
        raise ImageRejected(f"The virtual size of this {inspector} image cannot be read.") from exc


def _check_safety(inspector: oslo.FileInspector) -> None:
    try:
        inspector.safety_check()
    except oslo.SafetyCheckFailed as exc:
        reasons = "; ".join(sorted(str(failure) for failure in exc.failures.values()))
        raise ImageRejected(f"Image data is unsafe ({inspector}): {reasons}.") from None
    except _PARSER_ERRORS as exc:  # ImageFormatError for a truncated file, or a parser bug
        log.warning("safety check of a %s image failed: %s", inspector, exc)
        raise ImageRejected(f"Image data could not be checked as {inspector}: {exc}.") from None


def _check_vmdk(inspector: oslo.FileInspector) -> None:
    if not inspector.has_region("header"):
        # A text-only descriptor keeps the whole disk in the files its extents name.
        raise ImageRejected(
            "A VMDK descriptor file refers to its data in other files; upload a single-file "
            "monolithicSparse or streamOptimized VMDK."
        )
    # oslo keeps the descriptor lowercased; VMDK descriptors are case-insensitive.
    lines = [line.strip() for line in (getattr(inspector, "desc_text", "") or "").splitlines()]
    extents = [line for line in lines if line.split(" ", 1)[0] in _VMDK_ACCESS]
    # qemu reads a sparse VMDK's data from the file itself, but an extent that names another
    # file states an intent we refuse all the same.
    if len(extents) != 1 or extents[0].split()[2:3] != ["sparse"]:
        raise ImageRejected("A VMDK image may have only its own sparse extent, no other files.")
    for line in lines:
        key, _, value = line.partition("=")
        key, value = key.strip(), value.strip().strip('"')
        # qemu-img opens parentFileNameHint as a backing file whatever the createType.
        if (key == "parentfilenamehint" and value) or (
            key == "parentcid" and value != "ffffffff"
        ):
            raise ImageRejected("A VMDK image may not have a parent (backing) file.")


def _check_vhd(inspector: oslo.FileInspector) -> None:
    footer = inspector.region("header").data
    disk_type = int.from_bytes(footer[60:64], "big")
    if disk_type not in (_VHD_FIXED, _VHD_DYNAMIC):
        # Type 4 is a differencing disk: its data lives partly in a parent file it names.
        raise ImageRejected(f"A VHD image of type {disk_type} is refused (not fixed or dynamic).")
