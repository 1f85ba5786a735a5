"""The volume host's tasks over the in-memory back end: each answers with its one VolumeEvent, a
failure is an action_failed a user can read, and a task repeated (a redelivery) changes nothing."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import pytest

from compute_agent import messages as msg
from compute_agent.reporter import ReportError
from compute_agent.volume_manager import VolumeManager, gib, volume_tasks
from compute_agent.volumes.backend import GiB
from compute_agent.volumes.fake import FakeVolumes

from .image_server import ImageServer

VOLUME = "0f6b2c1e-4b7a-4c1d-9a53-6f9e1b2a7d10"
OTHER = "6d1e0a77-2f3c-4a4b-8c6e-0b1d2e3f4a5b"


class Recorder:
    def __init__(self) -> None:
        self.events: list[msg.VolumeEvent] = []
        self.reports: list[msg.VolumeHostReport] = []
        self.fail_next = 0

    def volume_event(self, event: msg.VolumeEvent) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise ReportError("broker down")
        self.events.append(event)

    def volume_host_report(self, report: msg.VolumeHostReport) -> None:
        self.reports.append(report)


@pytest.fixture
def backend() -> FakeVolumes:
    fake = FakeVolumes(total_gb=100, export_host="10.77.0.111", port=10809)
    fake.start()
    return fake


@pytest.fixture
def reporter() -> Recorder:
    return Recorder()


@pytest.fixture
def manager(backend: FakeVolumes, reporter: Recorder, tmp_path: Path) -> VolumeManager:
    return VolumeManager("storage-1", backend, reporter, backend_name="fake",
                         volumes_dir=tmp_path / "volumes", availability_zone="az-east")


def request(volume_id: str = VOLUME, **fields: object) -> msg.VolumeRequest:
    return msg.VolumeRequest(request_id="req-1", volume_id=volume_id, **fields)  # type: ignore[arg-type]


def test_the_manager_serves_every_task_the_contract_sends_to_a_volume_host() -> None:
    contract = {value for name, value in vars(msg).items()
                if name.startswith("TASK_") and value.startswith(msg.VOLUME_QUEUE_PREFIX)}
    assert set(volume_tasks()) == contract
    assert {task.request_type for task in volume_tasks().values()} == {msg.VolumeRequest}


def test_a_blank_volume_is_created_with_its_size_and_its_nbd_connection(
    manager: VolumeManager, reporter: Recorder, backend: FakeVolumes
) -> None:
    event = manager.create_volume(request(size_gb=2))
    assert reporter.events == [event]
    assert (event.event, event.host, event.request_id, event.size_gb) == (
        msg.EVENT_VOLUME_CREATED, "storage-1", "req-1", 2)
    assert event.connection == {"driver_volume_type": "nbd", "host": "10.77.0.111",
                                "port": 10809, "export": VOLUME}
    assert backend.volumes() == {VOLUME: 2 * GiB}


def test_a_repeated_create_answers_created_again_and_makes_nothing_new(
    manager: VolumeManager, backend: FakeVolumes
) -> None:
    manager.create_volume(request(size_gb=1))
    backend.write(VOLUME, 0, 42)
    again = manager.create_volume(request(size_gb=1))
    assert (again.event, again.size_gb) == (msg.EVENT_VOLUME_CREATED, 1)
    assert backend.read(VOLUME, 0) == 42  # the data written meanwhile is still there


def test_a_volume_from_a_volume_or_a_snapshot_carries_its_data(
    manager: VolumeManager, backend: FakeVolumes
) -> None:
    manager.create_volume(request(size_gb=1))
    backend.write(VOLUME, 512, 7)
    snap = manager.create_snapshot(request(snapshot_id="snap-1"))
    assert (snap.event, snap.snapshot_id) == (msg.EVENT_VOLUME_SNAPSHOT_CREATED, "snap-1")
    backend.write(VOLUME, 512, 9)

    from_snapshot = manager.create_volume(request(
        OTHER, size_gb=1, source=msg.SOURCE_SNAPSHOT, source_volume_id=VOLUME,
        snapshot_id="snap-1"))
    clone = manager.create_volume(request(
        "clone-1", size_gb=1, source=msg.SOURCE_VOLUME, source_volume_id=VOLUME))
    assert {from_snapshot.event, clone.event} == {msg.EVENT_VOLUME_CREATED}
    assert backend.read(OTHER, 512) == 7  # as it was when the snapshot was taken
    assert backend.read("clone-1", 512) == 9  # as it is now


def test_a_volume_from_an_image_is_downloaded_with_its_token_and_the_download_removed(
    manager: VolumeManager, backend: FakeVolumes, image_server: ImageServer, tmp_path: Path
) -> None:
    image = tmp_path / "tiny.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(image), "16M"], check=True)
    checksum = image_server.add("tiny.qcow2", image.read_bytes())
    ref = msg.ImageRef(id="img-1", checksum=checksum, disk_format="qcow2",
                       url=image_server.url("tiny.qcow2"), token="IMAGE-TOKEN")

    event = manager.create_volume(request(size_gb=1, source=msg.SOURCE_IMAGE, image=ref))

    assert event.event == msg.EVENT_VOLUME_CREATED
    assert [(r.method, r.token) for r in image_server.requests] == [("GET", "IMAGE-TOKEN")]
    assert list(manager.transfer_dir.iterdir()) == []
    manager.create_volume(request(size_gb=1, source=msg.SOURCE_IMAGE, image=ref))
    assert image_server.gets("tiny.qcow2") == 1  # a repeated create downloads nothing


def test_an_image_that_cannot_be_downloaded_fails_the_create_with_the_reason(
    manager: VolumeManager, backend: FakeVolumes, image_server: ImageServer
) -> None:
    ref = msg.ImageRef(id="img-1", disk_format="qcow2", url=image_server.url("missing.qcow2"),
                       token="IMAGE-TOKEN")
    event = manager.create_volume(request(size_gb=1, source=msg.SOURCE_IMAGE, image=ref))
    assert (event.event, event.action) == (msg.EVENT_VOLUME_ACTION_FAILED,
                                           msg.VOLUME_ACTION_CREATE)
    assert "HTTP 404" in event.message and "IMAGE-TOKEN" not in event.message
    assert backend.volumes() == {}
    assert list(manager.transfer_dir.iterdir()) == []


def test_an_image_with_a_backing_file_is_refused(
    manager: VolumeManager, backend: FakeVolumes, image_server: ImageServer, tmp_path: Path
) -> None:
    base, overlay = tmp_path / "base.qcow2", tmp_path / "overlay.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(base), "16M"], check=True)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(base),
                    str(overlay)], check=True)
    image_server.add("overlay.qcow2", overlay.read_bytes())
    ref = msg.ImageRef(id="img-2", disk_format="qcow2", url=image_server.url("overlay.qcow2"))
    event = manager.create_volume(request(size_gb=1, source=msg.SOURCE_IMAGE, image=ref))
    assert event.event == msg.EVENT_VOLUME_ACTION_FAILED
    assert "backing file" in event.message
    assert backend.volumes() == {}


@pytest.mark.parametrize(("disk_format", "expected"), [("vmdk", "'vmdk'"), ("iso", "'iso'")])
def test_an_image_in_a_format_volumes_cannot_take_is_refused_before_any_download(
    manager: VolumeManager, image_server: ImageServer, disk_format: str, expected: str
) -> None:
    ref = msg.ImageRef(id="img-3", disk_format=disk_format, url=image_server.url("x"))
    event = manager.create_volume(request(size_gb=1, source=msg.SOURCE_IMAGE, image=ref))
    assert event.event == msg.EVENT_VOLUME_ACTION_FAILED and expected in event.message
    assert image_server.requests == []


def test_a_back_end_failure_is_an_action_failed_naming_the_action(
    manager: VolumeManager, backend: FakeVolumes, reporter: Recorder
) -> None:
    event = manager.create_volume(request(size_gb=1000))
    assert (event.event, event.action, event.volume_id) == (
        msg.EVENT_VOLUME_ACTION_FAILED, msg.VOLUME_ACTION_CREATE, VOLUME)
    assert event.message == "not enough space on the volume host"
    assert reporter.events == [event]


def test_a_bug_in_the_back_end_is_still_answered(
    manager: VolumeManager, backend: FakeVolumes
) -> None:
    backend.fail("create", KeyError("oops"))
    event = manager.create_volume(request(size_gb=1))
    assert event.event == msg.EVENT_VOLUME_ACTION_FAILED
    assert event.message == "internal error on volume host storage-1: KeyError"


def test_delete_removes_the_volume_and_a_repeated_delete_succeeds(
    manager: VolumeManager, backend: FakeVolumes
) -> None:
    manager.create_volume(request(size_gb=1))
    assert manager.delete_volume(request()).event == msg.EVENT_VOLUME_DELETED
    assert manager.delete_volume(request()).event == msg.EVENT_VOLUME_DELETED
    assert backend.volumes() == {}


def test_an_attached_volume_is_not_deleted_and_the_user_is_told_why(
    manager: VolumeManager, backend: FakeVolumes
) -> None:
    manager.create_volume(request(size_gb=1))
    backend.connect(VOLUME)
    event = manager.delete_volume(request())
    assert (event.event, event.action) == (msg.EVENT_VOLUME_ACTION_FAILED,
                                           msg.VOLUME_ACTION_DELETE)
    assert event.message.startswith("volume is in use")
    assert VOLUME in backend.volumes()


def test_extend_reports_the_new_size_and_a_shrink_is_refused(
    manager: VolumeManager, backend: FakeVolumes
) -> None:
    manager.create_volume(request(size_gb=1))
    grown = manager.extend_volume(request(size_gb=3))
    assert (grown.event, grown.size_gb) == (msg.EVENT_VOLUME_EXTENDED, 3)
    assert manager.extend_volume(request(size_gb=3)).event == msg.EVENT_VOLUME_EXTENDED
    shrink = manager.extend_volume(request(size_gb=2))
    assert (shrink.event, shrink.action) == (msg.EVENT_VOLUME_ACTION_FAILED,
                                             msg.VOLUME_ACTION_EXTEND)
    assert "only grow" in shrink.message
    assert backend.volumes()[VOLUME] == 3 * GiB


def test_a_snapshot_of_a_missing_volume_fails_and_names_the_snapshot(
    manager: VolumeManager,
) -> None:
    event = manager.create_snapshot(request(snapshot_id="snap-9"))
    assert (event.event, event.action, event.snapshot_id) == (
        msg.EVENT_VOLUME_ACTION_FAILED, msg.VOLUME_ACTION_CREATE_SNAPSHOT, "snap-9")
    assert "does not exist" in event.message


def test_snapshot_delete_is_idempotent(manager: VolumeManager, backend: FakeVolumes) -> None:
    manager.create_volume(request(size_gb=1))
    manager.create_snapshot(request(snapshot_id="snap-1"))
    first = manager.delete_snapshot(request(snapshot_id="snap-1"))
    second = manager.delete_snapshot(request(snapshot_id="snap-1"))
    assert [first.event, second.event] == [msg.EVENT_VOLUME_SNAPSHOT_DELETED] * 2
    assert first.snapshot_id == "snap-1"
    assert backend.snapshots(VOLUME) == []


@pytest.mark.parametrize("disk_format", ["qcow2", "raw"])
def test_upload_puts_the_volume_as_an_image_in_the_format_asked(
    manager: VolumeManager, image_server: ImageServer, tmp_path: Path, disk_format: str
) -> None:
    manager.create_volume(request(size_gb=1))
    ref = msg.ImageRef(id="img-up", disk_format=disk_format,
                       url=image_server.url("v2/images/img-up/file"), token="UPLOAD-TOKEN")
    event = manager.upload_volume(request(image=ref))
    assert (event.event, event.image_id) == (msg.EVENT_VOLUME_UPLOADED, "img-up")
    body = image_server.uploads["/v2/images/img-up/file"]
    uploaded = tmp_path / "uploaded"
    uploaded.write_bytes(body)
    info = subprocess.run(["qemu-img", "info", "-f", disk_format, "--output=json", str(uploaded)],
                          capture_output=True, text=True, check=True).stdout
    assert f'"virtual-size": {GiB}' in info
    assert [r.token for r in image_server.requests] == ["UPLOAD-TOKEN"]
    assert list(manager.transfer_dir.glob("*")) == []


def test_an_upload_the_image_api_refuses_fails_with_the_status(
    manager: VolumeManager, image_server: ImageServer
) -> None:
    manager.create_volume(request(size_gb=1))
    image_server.required_token = "ANOTHER"
    ref = msg.ImageRef(id="img-up", disk_format="qcow2", url=image_server.url("f"), token="T")
    event = manager.upload_volume(request(image=ref))
    assert (event.event, event.action, event.image_id) == (
        msg.EVENT_VOLUME_ACTION_FAILED, msg.VOLUME_ACTION_UPLOAD, "img-up")
    assert "HTTP 401" in event.message


def test_a_report_that_cannot_be_sent_propagates_so_the_task_is_retried(
    manager: VolumeManager, reporter: Recorder, backend: FakeVolumes
) -> None:
    reporter.fail_next = 1
    with pytest.raises(ReportError):
        manager.create_volume(request(size_gb=1))
    retried = manager.create_volume(request(size_gb=1))  # what Celery's retry does
    assert retried.event == msg.EVENT_VOLUME_CREATED
    assert reporter.events == [retried]


def test_tasks_on_one_volume_run_one_at_a_time(
    manager: VolumeManager, backend: FakeVolumes
) -> None:
    manager.create_volume(request(size_gb=1))
    inside = threading.Event()
    release = threading.Event()
    overlapped: list[bool] = []
    original = backend.snapshot

    def slow_snapshot(volume_id: str, snapshot_id: str) -> None:
        overlapped.append(inside.is_set())
        inside.set()
        release.wait(2)
        original(volume_id, snapshot_id)

    backend.snapshot = slow_snapshot  # type: ignore[method-assign]
    first = threading.Thread(target=manager.create_snapshot, args=(request(snapshot_id="a"),))
    first.start()
    inside.wait(2)
    second = threading.Thread(target=manager.delete_volume, args=(request(),))
    second.start()
    time.sleep(0.2)
    assert VOLUME in backend.volumes()  # the delete waits for the snapshot
    release.set()
    first.join(2)
    second.join(2)
    assert overlapped == [False]
    assert backend.volumes() == {}


def test_the_host_report_gives_capacity_zone_and_every_volume(
    manager: VolumeManager, reporter: Recorder
) -> None:
    manager.create_volume(request(size_gb=2))
    manager.send_host_report()
    assert reporter.reports == [msg.VolumeHostReport(
        host="storage-1", backend="fake", total_gb=100, free_gb=98,
        availability_zone="az-east", volumes={VOLUME: 2 * GiB})]


def test_a_host_report_that_fails_does_not_raise(
    manager: VolumeManager, reporter: Recorder, backend: FakeVolumes
) -> None:
    backend.fail("capacity")
    manager.send_host_report()
    assert reporter.reports == []
    manager.send_host_report()
    assert len(reporter.reports) == 1


def test_sizes_are_whole_gib_rounded_up() -> None:
    assert [gib(GiB), gib(GiB + 1), gib(0)] == [1, 2, 0]
