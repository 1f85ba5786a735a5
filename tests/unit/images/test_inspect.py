"""The image inspector on its own: what it accepts, what it refuses and why, and when."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cloud.images.inspect import (
    DEFAULT_MAX_VIRTUAL_SIZE,
    HEAD_SIZE,
    ImageRejected,
    StreamInspector,
    Verdict,
    inspect_file,
    max_virtual_size,
)
from tests.unit.images import corpus
from tests.unit.images.corpus import BENIGN, HOSTILE, MIB, Case


def inspect_bytes(data: bytes, disk_format: str, chunk: int = MIB) -> Verdict:
    inspector = StreamInspector(disk_format)
    for start in range(0, len(data), chunk):
        inspector.feed(data[start : start + chunk])
    return inspector.verdict()


@pytest.mark.parametrize("case", HOSTILE, ids=str)
def test_hostile_images_are_refused_with_a_reason(case: Case):
    with pytest.raises(ImageRejected, match=case.why):
        inspect_bytes(case.data, case.disk_format)


@pytest.mark.parametrize("case", BENIGN, ids=str)
def test_benign_images_are_accepted(case: Case):
    inspect_bytes(case.data, case.disk_format)


@pytest.mark.parametrize("case", HOSTILE + BENIGN, ids=str)
def test_the_verdict_does_not_depend_on_how_the_upload_was_chunked(case: Case):
    def outcome(chunk: int) -> object:
        try:
            return inspect_bytes(case.data, case.disk_format, chunk)
        except ImageRejected as exc:
            return str(exc)

    assert outcome(511) == outcome(len(case.data))


@pytest.mark.parametrize(
    ("data", "disk_format", "content_format", "virtual_size"),
    [
        (corpus.raw_disk(300_000), "raw", "raw", 300_000),
        (corpus.partitioned_disk(), "raw", "gpt", 2 * MIB),
        (corpus.qcow2(virtual_size=5 * corpus.GIB), "qcow2", "qcow2", 5 * corpus.GIB),
        (corpus.iso(volume_blocks=40), "iso", "iso", 40 * corpus.ISO_BLOCK),
        (corpus.hybrid_iso(), "iso", "iso", 32 * corpus.ISO_BLOCK),
        (corpus.vmdk_sparse(sectors=4096), "vmdk", "vmdk", 4096 * corpus.SECTOR),
        (corpus.vhd(size=8 * MIB), "vhd", "vhd", 8 * MIB),
        (corpus.vdi(size=3 * MIB), "vdi", "vdi", 3 * MIB),
    ],
    ids=["raw", "partitioned raw", "qcow2", "iso", "hybrid iso", "vmdk", "vhd", "vdi"],
)
def test_the_virtual_size_is_the_disk_the_guest_would_see(
    data, disk_format, content_format, virtual_size
):
    assert inspect_bytes(data, disk_format) == Verdict(content_format, virtual_size)


def test_a_raw_disk_that_begins_with_text_is_still_raw():
    # oslo's VMDK parser trips over text followed by binary; that must not refuse a raw disk.
    data = b"#!ipxe boot script\n" * 40 + bytes(range(1, 256)) * 400
    assert inspect_bytes(data, "raw") == Verdict("raw", len(data))


def test_an_empty_raw_image_is_accepted():
    assert inspect_bytes(b"", "raw") == Verdict("raw", 0)


def test_an_empty_image_is_not_a_qcow2():
    with pytest.raises(ImageRejected, match="disk_format is qcow2"):
        inspect_bytes(b"", "qcow2")


@pytest.mark.parametrize("disk_format", ["ploop", "floppy"])
def test_formats_that_cannot_be_inspected_are_refused_before_any_byte(disk_format):
    with pytest.raises(ImageRejected, match="cannot be inspected"):
        StreamInspector(disk_format)


def test_the_virtual_size_limit_defaults_to_one_tebibyte(settings):
    del settings.KUMO_IMAGE_MAX_VIRTUAL_SIZE
    assert max_virtual_size() == DEFAULT_MAX_VIRTUAL_SIZE == 1024**4


def test_the_virtual_size_limit_is_a_setting(settings):
    settings.KUMO_IMAGE_MAX_VIRTUAL_SIZE = 8 * MIB
    with pytest.raises(ImageRejected, match="exceeds the limit of 8388608 bytes"):
        inspect_bytes(corpus.qcow2(virtual_size=16 * MIB), "qcow2")
    with pytest.raises(ImageRejected, match="exceeds the limit"):
        inspect_bytes(corpus.raw_disk(8 * MIB + 1), "raw")
    assert inspect_bytes(corpus.raw_disk(8 * MIB), "raw").virtual_size == 8 * MIB


def _endless(head: bytes, consumed: list[int]) -> Iterator[bytes]:
    """The head, then zeros for ever; `consumed` counts the bytes handed out."""
    yield head
    consumed.append(len(head))
    while True:
        yield b"\0" * MIB
        consumed.append(MIB)


@pytest.mark.parametrize(
    ("head", "disk_format", "why"),
    [
        (corpus.qcow2(virtual_size=2 * corpus.TIB)[:4096], "qcow2", "exceeds the limit"),
        (b"\0" * 4096, "qcow2", "disk_format is qcow2"),
        (corpus.raw_disk(4096), "iso", "disk_format is iso"),
        (b"KDMV" + b"\xff" * 4092, "vmdk", "not a valid vmdk image"),
    ],
    ids=["qcow2 claiming too large a disk", "zeros declared qcow2", "raw declared iso",
         "broken vmdk header"],
)
def test_a_hopeless_stream_is_refused_after_its_first_mebibyte(head, disk_format, why):
    consumed: list[int] = []
    with pytest.raises(ImageRejected, match=why):
        for _ in StreamInspector(disk_format).watch(_endless(head, consumed)):
            pass
    assert sum(consumed) <= HEAD_SIZE + MIB


def test_a_raw_stream_is_refused_as_soon_as_it_outgrows_the_limit(settings):
    settings.KUMO_IMAGE_MAX_VIRTUAL_SIZE = 3 * MIB
    consumed: list[int] = []
    with pytest.raises(ImageRejected, match="exceeds the limit"):
        for _ in StreamInspector("raw").watch(_endless(b"", consumed)):
            pass
    assert sum(consumed) <= 4 * MIB


def test_watch_refuses_at_the_end_instead_of_finishing():
    case = HOSTILE[0]
    passed: list[bytes] = []
    with pytest.raises(ImageRejected, match="backing file"):
        passed.extend(StreamInspector(case.disk_format).watch([case.data]))
    # The bytes went through (a consumer may have written them), but the stream never ended, so
    # a consumer that renames its file into place only at the end never does.
    assert passed == [case.data]


def test_watch_passes_the_bytes_through_unchanged():
    data = corpus.partitioned_disk()
    chunks = [data[i : i + 100_000] for i in range(0, len(data), 100_000)]
    inspector = StreamInspector("raw")
    assert list(inspector.watch(chunks)) == chunks
    assert inspector.verdict() == Verdict("gpt", len(data))


def test_files_on_disk_are_inspected_the_same_way(tmp_path):
    path = tmp_path / "disk.qcow2"
    path.write_bytes(corpus.qcow2(backing=b"/etc/shadow"))
    with pytest.raises(ImageRejected, match="backing file"):
        inspect_file(path, "qcow2")
    path.write_bytes(corpus.qcow2())
    assert inspect_file(path, "qcow2") == Verdict("qcow2", 16 * MIB)


@pytest.fixture(scope="module")
def qemu_images(tmp_path_factory):
    if corpus.qemu_img() is None:
        pytest.skip("qemu-img is not installed (it comes with qemu-utils at setup)")
    return corpus.qemu_img_fixtures(tmp_path_factory.mktemp("qemu-img"))


@pytest.mark.parametrize(
    "name",
    ["disk.qcow2", "disk.raw", "sparse.vmdk", "stream.vmdk", "disk.vhd", "disk.vhdx", "disk.vdi",
     "backed.qcow2", "external.qcow2", "flat.vmdk"],
)
def test_images_made_by_qemu_img_get_the_verdicts_and_sizes_qemu_would(qemu_images, name):
    image = qemu_images[name]
    if image.why:
        with pytest.raises(ImageRejected, match=image.why):
            inspect_file(image.path, image.disk_format)
    else:
        assert inspect_file(image.path, image.disk_format).virtual_size == image.virtual_size
