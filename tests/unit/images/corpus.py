"""Disk images written byte by byte, hostile and benign, for the inspection tests.

Each builder lays out just enough of its format for qemu-img to open it (the qcow2 and VMDK ones
were checked with `qemu-img info`), so a rejection here stands for a real attack, not a malformed
toy. `qemu_img_fixtures` makes real images with qemu-img when it is installed.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

KIB, MIB, GIB, TIB = 1024, 1024**2, 1024**3, 1024**4
SECTOR = 512
CLUSTER = 64 * KIB
ISO_BLOCK = 2048


def qcow2(
    virtual_size: int = 16 * MIB,
    *,
    backing: bytes | None = None,
    data_file: bytes | None = None,
    incompatible: int = 0,
) -> bytes:
    """A qcow2 v3 image with no data: header, refcount table and block, one L1 table."""
    l1_entries = max(1, -(-virtual_size // (CLUSTER * (CLUSTER // 8))))
    extensions = b""
    if data_file is not None:
        incompatible |= 1 << 2  # the external data file bit
        padded = data_file + b"\0" * (-len(data_file) % 8)
        extensions += struct.pack(">II", 0x44415441, len(data_file)) + padded
    extensions += struct.pack(">II", 0, 0)
    backing_offset = 512 if backing else 0
    header = struct.pack(
        ">4sIQIIQIIQQIIQQQQII",
        b"QFI\xfb",
        3,
        backing_offset,
        len(backing or b""),
        16,  # 64 KiB clusters
        virtual_size,
        0,
        l1_entries,
        3 * CLUSTER,  # L1 table
        CLUSTER,  # refcount table
        1,
        0,
        0,
        incompatible,
        0,
        0,
        4,  # 16-bit refcounts
        104,
    )
    first = bytearray(CLUSTER)
    first[: len(header) + len(extensions)] = header + extensions
    if backing:
        first[backing_offset : backing_offset + len(backing)] = backing
    refcount_table = struct.pack(">Q", 2 * CLUSTER).ljust(CLUSTER, b"\0")
    refcount_block = struct.pack(">4H", 1, 1, 1, 1).ljust(CLUSTER, b"\0")
    return bytes(first) + refcount_table + refcount_block + b"\0" * (8 * l1_entries)


def raw_disk(size: int = 256 * KIB) -> bytes:
    """Unformatted bytes, the kind a dd of a blank disk gives."""
    pattern = b"kumo raw disk\n"
    return (pattern * (size // len(pattern) + 1))[:size]


def mbr(partition_type: int = 0x83, boot: int = 0x80, start: int = 2048, sectors: int = 0) -> bytes:
    """A master boot record with one partition."""
    record = bytearray(SECTOR)
    entry = struct.pack("<B3BB3BII", boot, 0, 2, 0, partition_type, 0xFE, 0xFF, 0xFF, start,
                        sectors or 2048)
    record[446 : 446 + 16] = entry
    record[510:512] = b"\x55\xaa"
    return bytes(record)


def partitioned_disk(size: int = 2 * MIB) -> bytes:
    return mbr() + raw_disk(size - SECTOR)


def iso(volume_blocks: int = 32, claimed_blocks: int | None = None) -> bytes:
    """An ISO 9660 image: 16 empty system sectors, a primary volume descriptor, a terminator;
    `claimed_blocks` is the volume size its descriptor states, when that should be a lie."""
    claimed = volume_blocks if claimed_blocks is None else claimed_blocks
    pvd = bytearray(ISO_BLOCK)
    pvd[0:7] = b"\x01CD001\x01"
    pvd[40:48] = b"KUMO    "
    pvd[80:88] = struct.pack("<I", claimed) + struct.pack(">I", claimed)
    pvd[128:132] = struct.pack("<H", ISO_BLOCK) + struct.pack(">H", ISO_BLOCK)
    terminator = b"\xffCD001\x01".ljust(ISO_BLOCK, b"\0")
    body = b"\0" * (16 * ISO_BLOCK) + bytes(pvd) + terminator
    return body.ljust(volume_blocks * ISO_BLOCK, b"\0")


def hybrid_iso() -> bytes:
    """An ISO with an MBR in its system area, as isohybrid makes for USB sticks."""
    image = iso()
    return mbr(partition_type=0x17, start=0, sectors=len(image) // SECTOR) + image[SECTOR:]


def qcow2_iso_polyglot() -> bytes:
    """A qcow2 header at the start and an ISO volume descriptor at 32 KiB: two disks in one."""
    image = bytearray(qcow2())
    descriptor = iso()[16 * ISO_BLOCK : 18 * ISO_BLOCK]
    image[16 * ISO_BLOCK : 18 * ISO_BLOCK] = descriptor
    return bytes(image)


_VMDK_DDB = (
    'ddb.virtualHWVersion = "4"\n'
    'ddb.geometry.cylinders = "32"\n'
    'ddb.geometry.heads = "16"\n'
    'ddb.geometry.sectors = "63"\n'
    'ddb.adapterType = "ide"\n'
)


def vmdk_descriptor(
    create_type: str = "monolithicSparse",
    extents: tuple[str, ...] = ('RW 32768 SPARSE "disk.vmdk"',),
    parent: str | None = None,
) -> str:
    lines = ["# Disk DescriptorFile", "version=1", "CID=23f50b93"]
    if parent:
        lines += ["parentCID=12345678", f'parentFileNameHint="{parent}"']
    else:
        lines += ["parentCID=ffffffff"]
    lines += [f'createType="{create_type}"', "", "# Extent description", *extents, ""]
    return "\n".join(lines) + "\n" + _VMDK_DDB


def vmdk_sparse(descriptor: str | None = None, sectors: int = 32768) -> bytes:
    """A monolithicSparse VMDK: the binary header, the embedded descriptor, empty grain tables."""
    text = (descriptor or vmdk_descriptor()).encode("ascii")
    header = struct.pack(
        "<4sIIQQQQIQQQB4sH",
        b"KDMV",
        1,
        3,
        sectors,
        128,  # 64 KiB grains
        1,  # descriptor at sector 1 ...
        20,  # ... 20 sectors long
        512,
        21,
        26,
        128,
        0,
        b"\n \r\n",
        0,
    )
    body = header.ljust(SECTOR, b"\0") + text.ljust(20 * SECTOR, b"\0")
    return body.ljust(128 * SECTOR, b"\0")


def vhd(disk_type: int = 3, size: int = 16 * MIB) -> bytes:
    """A dynamic (3) or differencing (4) VHD: footer copy, dynamic header, footer."""
    footer = bytearray(SECTOR)
    footer[0:8] = b"conectix"
    footer[8:12] = struct.pack(">I", 2)
    footer[12:16] = struct.pack(">I", 0x10000)
    footer[16:24] = struct.pack(">Q", SECTOR)
    footer[28:32] = b"kumo"
    footer[40:56] = struct.pack(">QQ", size, size)
    cylinders, heads, sectors = _chs(size)
    footer[56:60] = struct.pack(">HBB", cylinders, heads, sectors)
    footer[60:64] = struct.pack(">I", disk_type)
    footer[64:68] = struct.pack(">I", ~sum(footer) & 0xFFFFFFFF)
    dynamic = bytearray(1024)
    dynamic[0:8] = b"cxsparse"
    dynamic[8:16] = b"\xff" * 8
    dynamic[16:24] = struct.pack(">Q", 1536)
    blocks = -(-cylinders * heads * sectors * SECTOR // (2 * MIB))
    dynamic[24:36] = struct.pack(">III", 0x10000, blocks, 2 * MIB)
    bat = b"\xff" * SECTOR
    return bytes(footer) + bytes(dynamic) + bat + bytes(footer)


def _chs(size: int) -> tuple[int, int, int]:
    """The VHD geometry for a small disk: 4 heads, 17 sectors a track, enough cylinders."""
    return -(-size // (4 * 17 * SECTOR)), 4, 17


def vdi(size: int = 16 * MIB) -> bytes:
    """A dynamic VirtualBox image with no block allocated."""
    blocks = -(-size // MIB)
    header = bytearray(SECTOR)
    header[0:40] = b"<<< Oracle VM VirtualBox Disk Image >>>\n"
    header[0x40:0x54] = struct.pack("<IIIII", 0xBEDA107F, 0x00010001, 0x180, 1, 0)
    header[0x154:0x170] = struct.pack("<IIIIIII", SECTOR, 2 * SECTOR, 0, 0, 0, SECTOR, 0)
    header[0x170:0x188] = struct.pack("<QIIII", size, MIB, 0, blocks, 0)
    block_map = (b"\xff" * 4 * blocks).ljust(SECTOR, b"\0")
    return bytes(header) + block_map


def luks() -> bytes:
    header = bytearray(4096)
    header[0:8] = b"LUKS\xba\xbe" + struct.pack(">H", 1)
    header[8:40] = b"aes".ljust(32, b"\0")
    header[40:72] = b"xts-plain64".ljust(32, b"\0")
    header[72:104] = b"sha256".ljust(32, b"\0")
    header[104:108] = struct.pack(">I", 8)
    return bytes(header)


@dataclass(frozen=True)
class Case:
    name: str
    data: bytes
    disk_format: str
    why: str  # a fragment of the reason the user reads

    def __str__(self) -> str:
        return self.name


HOSTILE = [
    Case("qcow2 whose backing file is /etc/passwd", qcow2(backing=b"/etc/passwd"), "qcow2",
         "backing file"),
    Case("qcow2 with an external data file", qcow2(data_file=b"/etc/passwd"), "qcow2",
         "data_file"),
    Case("qcow2 with an unknown incompatible feature", qcow2(incompatible=1 << 20), "qcow2",
         "Unknown QCOW2 features"),
    Case("raw bytes declared as qcow2", raw_disk(), "qcow2", "disk_format is qcow2"),
    Case("qcow2 declared as raw", qcow2(), "raw", "in qcow2 format"),
    Case("qcow2 claiming a 2 TiB disk", qcow2(virtual_size=2 * TIB), "qcow2", "exceeds the limit"),
    Case("VMDK descriptor with a flat extent on /etc/passwd",
         vmdk_descriptor("monolithicFlat", ('RW 2048 FLAT "/etc/passwd" 0',)).encode(), "vmdk",
         "unsafe"),
    Case("VMDK descriptor naming a sparse extent in another file",
         vmdk_descriptor().encode(), "vmdk", "other files"),
    Case("sparse VMDK with a second extent on another file",
         vmdk_sparse(vmdk_descriptor(extents=('RW 32768 SPARSE "disk.vmdk"',
                                              'RW 2048 FLAT "secret.img" 0'))),
         "vmdk", "only its own sparse extent"),
    Case("sparse VMDK whose parent is /etc/passwd",
         vmdk_sparse(vmdk_descriptor(parent="/etc/passwd")), "vmdk", "parent"),
    Case("qcow2/ISO polyglot declared as qcow2", qcow2_iso_polyglot(), "qcow2",
         "more than one format"),
    Case("qcow2/ISO polyglot declared as iso", qcow2_iso_polyglot(), "iso",
         "more than one format"),
    Case("qcow2/ISO polyglot declared as raw", qcow2_iso_polyglot(), "raw",
         "more than one format"),
    Case("ISO declared as raw", iso(), "raw", "in iso format"),
    Case("raw bytes declared as iso", raw_disk(), "iso", "disk_format is iso"),
    Case("differencing VHD", vhd(disk_type=4), "vhd", "type 4"),
    Case("LUKS container declared as raw", luks(), "raw", "in luks format"),
    Case("ISO claiming a 2 TiB volume", iso(claimed_blocks=2**30), "iso", "exceeds the limit"),
]

BENIGN = [
    Case("raw disk", raw_disk(), "raw", ""),
    Case("raw disk with a partition table", partitioned_disk(), "raw", ""),
    Case("kernel image declared as aki", raw_disk(64 * KIB), "aki", ""),
    Case("qcow2", qcow2(), "qcow2", ""),
    Case("ISO", iso(), "iso", ""),
    Case("hybrid ISO with an MBR", hybrid_iso(), "iso", ""),
    Case("sparse VMDK", vmdk_sparse(), "vmdk", ""),
    Case("dynamic VHD", vhd(), "vhd", ""),
    Case("VDI", vdi(), "vdi", ""),
]


def qemu_img() -> str | None:
    return shutil.which("qemu-img")


@dataclass(frozen=True)
class QemuImage:
    path: Path
    disk_format: str
    why: str  # "" for an image to accept, else a fragment of the reason it is refused
    virtual_size: int  # as qemu-img itself reports it


def qemu_img_fixtures(directory: Path) -> dict[str, QemuImage]:
    """Real images from qemu-img, by file name. Call before any no-subprocess guard is in place.
    qemu-img only ever opens the benign ones, with their format named."""
    made: dict[str, QemuImage] = {}

    def create(name: str, fmt: str, declared: str, why: str, *options: str) -> None:
        path = directory / name
        subprocess.run(
            ["qemu-img", "create", "-q", "-f", fmt, *options, str(path), "16M"],
            check=True,
            cwd=directory,
        )
        size = 16 * MIB
        if not why:
            info = subprocess.run(
                ["qemu-img", "info", "--output=json", "-f", fmt, str(path)],
                check=True,
                capture_output=True,
                text=True,
            )
            size = json.loads(info.stdout)["virtual-size"]
        made[name] = QemuImage(path, declared, why, size)

    create("disk.qcow2", "qcow2", "qcow2", "")
    create("disk.raw", "raw", "raw", "")
    create("sparse.vmdk", "vmdk", "vmdk", "")
    create("stream.vmdk", "vmdk", "vmdk", "", "-o", "subformat=streamOptimized")
    create("disk.vhd", "vpc", "vhd", "")
    create("disk.vhdx", "vhdx", "vhdx", "")
    create("disk.vdi", "vdi", "vdi", "")
    create("backed.qcow2", "qcow2", "qcow2", "backing file", "-b", "/etc/passwd", "-F", "raw")
    create("external.qcow2", "qcow2", "qcow2", "data_file", "-o",
           f"data_file={directory / 'external.data'}")
    create("flat.vmdk", "vmdk", "vmdk", "unsafe", "-o", "subformat=monolithicFlat")
    return made
