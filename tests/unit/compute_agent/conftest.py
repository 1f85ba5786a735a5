"""Fixtures shared by the agent's unit tests: the real libvirt test driver, a recording reporter,
a manager on both and an instance running under it. Nothing here needs Django, Redis or a running
daemon."""

from __future__ import annotations

import logging
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from compute_agent import messages as msg
from compute_agent.drivers.base import Driver
from compute_agent.drivers.fake import FakeCloud
from compute_agent.drivers.libvirt import LibvirtDriver
from compute_agent.logcontext import RequestIdFilter
from compute_agent.manager import ComputeManager

from .fakes import RecordingReporter

TEST_URI = "test:///default"

SpawnRequestFactory = Callable[..., msg.SpawnRequest]


@pytest.fixture(params=["libvirt-test", "fake"])
def any_driver(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Driver]:
    """Each driver in turn: libvirt's test driver and the in-memory fake (the contract they share)."""
    if request.param == "fake":
        yield FakeCloud().driver("host-a")
        return
    driver = LibvirtDriver("test:///default", instances_dir=tmp_path)
    yield driver
    driver.close()


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[LibvirtDriver]:
    instances = tmp_path / "instances"
    instances.mkdir()
    driver = LibvirtDriver(TEST_URI, instances_dir=instances)
    yield driver
    driver.close()


@pytest.fixture
def new_uuid(driver: LibvirtDriver) -> Iterator[Callable[[], str]]:
    """Hands out fresh instance uuids and removes their domains afterwards: the test driver's
    state lives as long as the process, so a leftover would leak into later tests."""
    made: list[str] = []

    def make() -> str:
        made.append(str(uuid.uuid4()))
        return made[-1]

    yield make
    for instance_uuid in made:
        driver.destroy(instance_uuid)


@pytest.fixture
def spawn_request(new_uuid: Callable[[], str]) -> SpawnRequestFactory:
    def make(**overrides: object) -> msg.SpawnRequest:
        fields: dict[str, object] = {
            "request_id": f"req-{uuid.uuid4()}",
            "instance_uuid": new_uuid(),
            "name": "web-1",
            "hostname": "web-1",
            "vcpus": 1,
            "memory_mb": 128,
            "root_gb": 1,
            "image": msg.ImageRef(id="img-1", token="SECRET-IMAGE-TOKEN"),
        }
        fields.update(overrides)
        return msg.SpawnRequest(**fields)  # type: ignore[arg-type]

    return make


@pytest.fixture
def reporter() -> RecordingReporter:
    return RecordingReporter()


@pytest.fixture
def manager(driver: LibvirtDriver, reporter: RecordingReporter) -> ComputeManager:
    return ComputeManager("host-a", driver, reporter, host_ip="192.0.2.10")


@pytest.fixture
def running(manager: ComputeManager, spawn_request: SpawnRequestFactory) -> str:
    request = spawn_request()
    assert manager.spawn(request).event == msg.EVENT_SPAWNED
    return request.instance_uuid


needs_qemu_img = pytest.mark.skipif(
    shutil.which("qemu-img") is None, reason="qemu-img is not installed (Debian qemu-utils)"
)


def make_qcow2(path: Path, size: str = "64M") -> bytes:
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", str(path), size], check=True, timeout=30
    )
    return path.read_bytes()


class _LogLines(logging.Handler):
    """Formats each record at emit time, with the agent's request id, into a list of lines."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.addFilter(RequestIdFilter())
        self.setFormatter(logging.Formatter("%(request_id)s %(name)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def agent_log() -> Iterator[list[str]]:
    """Every line the agent's loggers write during the test."""
    logger = logging.getLogger("compute_agent")
    handler = _LogLines()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler.lines
    logger.removeHandler(handler)
    logger.setLevel(level)
