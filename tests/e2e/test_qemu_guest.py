"""A real tiny guest under qemu (TCG) through the agent's own manager and libvirt driver.

No control plane: a local HTTP server plays the image API, a recorder stands where the conductor
would be. The guest (scripts/build_image.sh) prints a banner with the hostname and instance uuid it
read from its config drive, so the console log shows the whole host side worked: image download
and cache, overlay, config drive, domain XML, serial log. Then stop, start, destroy.

Skipped only when qemu:///system cannot be reached: libvirtd is not running and cannot be started
here (not installed: `KUMO_LIBVIRT_URI=qemu:///system make setup` installs and starts it).
Figures (spawn to banner, a bare `virsh create` of the same XML, cache miss and hit) are printed,
not asserted. At most one guest runs at a time.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import os
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from compute_agent import messages as msg
from compute_agent.domain_xml import build_domain_xml
from compute_agent.drivers.libvirt import LibvirtDriver
from compute_agent.image_cache import ImageCache
from compute_agent.instance_disks import prepare
from compute_agent.manager import ComputeManager
from tests.unit.compute_agent.fakes import RecordingReporter

pytestmark = pytest.mark.e2e

from tests.e2e.conftest import BANNER, BOOT_TIMEOUT, REPO, URI

libvirt = pytest.importorskip("libvirt")


@pytest.fixture(scope="module")
def image_url(tiny_image: Path) -> Iterator[str]:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tiny_image.parent))
    handler.log_message = lambda *args: None  # type: ignore[assignment]
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/{tiny_image.name}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def instances_dir() -> Iterator[Path]:
    # Under var/, not pytest's tmp_path: qemu runs as another user (libvirt-qemu) and must be able
    # to walk down to the disks, which pytest's 0700 temporary directories do not allow.
    path = REPO / "var" / "e2e" / f"instances-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    path.mkdir(mode=0o755, parents=True)
    for parent in (path.parent, path):
        parent.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def image_ref(image: Path, url: str) -> msg.ImageRef:
    data = image.read_bytes()
    return msg.ImageRef(
        id="kumo-tiny", checksum=hashlib.md5(data).hexdigest(), disk_format="qcow2",
        size=len(data), url=url, token="e2e-token",
    )


def wait_for(path: Path, *needles: str, timeout: float = BOOT_TIMEOUT) -> float:
    """Seconds until every needle is in the file at `path`; fails with the log's tail if not."""
    started = time.monotonic()
    text = ""
    while time.monotonic() - started < timeout:
        try:
            text = path.read_text(errors="replace")
        except FileNotFoundError:
            text = ""
        if all(needle in text for needle in needles):
            return time.monotonic() - started
        time.sleep(0.2)
    raise AssertionError(f"{needles} not in {path} after {timeout:.0f} s; it ends with:\n{text[-1500:]}")


def test_a_real_guest_boots_from_its_image_reads_its_config_drive_stops_starts_and_is_destroyed(
    qemu_conn: object, tiny_image: Path, image_url: str, instances_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    driver = LibvirtDriver(URI, instances_dir=instances_dir, domain_type="qemu")
    reporter = RecordingReporter()
    manager = ComputeManager("e2e-host", driver, reporter)
    instance_uuid = str(uuid.uuid4())
    hostname = f"kumo-e2e-{instance_uuid[:8]}"
    request = msg.SpawnRequest(
        request_id="req-e2e", instance_uuid=instance_uuid, name="e2e guest", hostname=hostname,
        vcpus=1, memory_mb=128, root_gb=1, image=image_ref(tiny_image, image_url),
        networks=[msg.NetworkInfo("net", "private", "port-e2e", "fa:16:3e:00:e2:e1", "10.0.0.9")],
    )
    figures: dict[str, float] = {}
    try:
        started = time.monotonic()
        event = manager.spawn(request)
        assert event.event == msg.EVENT_SPAWNED, event.message + event.details
        console = driver.files.console_log(instance_uuid)
        wait_for(console, BANNER, f"hostname={hostname}", f"instance={instance_uuid}")
        figures["spawn call to banner (cache miss, download included)"] = (
            time.monotonic() - started
        )
        output = manager.console_output(
            msg.ConsoleOutputRequest(request_id="r", instance_uuid=instance_uuid, length=50)
        )
        assert f"hostname={hostname}" in output.output

        event = manager.stop(msg.PowerRequest(request_id="r", instance_uuid=instance_uuid, timeout=30))
        assert (event.event, event.power_state) == (msg.EVENT_STOPPED, msg.POWER_SHUTDOWN)
        started = time.monotonic()
        event = manager.start(msg.PowerRequest(request_id="r", instance_uuid=instance_uuid))
        assert (event.event, event.power_state) == (msg.EVENT_STARTED, msg.POWER_RUNNING)
        wait_for(console, BANNER, f"hostname={hostname}")
        figures["start call to banner (disk already there)"] = time.monotonic() - started
    finally:
        event = manager.destroy(msg.DestroyRequest(request_id="r", instance_uuid=instance_uuid))
    assert event.event == msg.EVENT_DESTROYED
    with pytest.raises(libvirt.libvirtError):
        qemu_conn.lookupByUUIDString(instance_uuid)  # type: ignore[attr-defined]
    assert not (instances_dir / instance_uuid).exists()

    figures["bare virsh create to banner"] = bare_virsh_create(request, driver, instances_dir)
    figures.update(cache_figures(request.image, instances_dir))
    with capsys.disabled():
        print("\n[e2e qemu guest] seconds (TCG, measured, not asserted):")
        for what, seconds in figures.items():
            print(f"  {what:55s} {seconds:7.3f}")


def bare_virsh_create(
    request: msg.SpawnRequest, driver: LibvirtDriver, instances_dir: Path
) -> float:
    """The same guest XML (own disk and config drive, cache hit) started with `virsh create`."""
    bare = msg.SpawnRequest.from_dict(request.to_dict())
    bare.instance_uuid = str(uuid.uuid4())
    prepared = prepare(bare, driver.files, driver.image_cache)
    xml = build_domain_xml(
        bare, domain_type="qemu", disks=prepared.disks,
        serial_log_path=prepared.serial_log_path, video_model="vga", machine="pc",
        mac_addresses=[n.mac_address for n in bare.networks],
    )
    xml_file = instances_dir / "bare.xml"
    xml_file.write_text(xml)
    try:
        started = time.monotonic()
        subprocess.run(
            ["virsh", "-c", URI, "create", str(xml_file)], check=True, capture_output=True,
            timeout=60,
        )
        wait_for(Path(prepared.serial_log_path), BANNER, f"instance={bare.instance_uuid}")
        return time.monotonic() - started
    finally:
        subprocess.run(
            ["virsh", "-c", URI, "destroy", bare.instance_uuid], check=False, capture_output=True,
            timeout=60,
        )
        driver.files.remove_instance_dir(bare.instance_uuid)


def cache_figures(image: msg.ImageRef, instances_dir: Path) -> dict[str, float]:
    cache = ImageCache(instances_dir / "_cache_timing")
    started = time.monotonic()
    assert cache.fetch(image).downloaded
    miss = time.monotonic() - started
    started = time.monotonic()
    assert not cache.fetch(image).downloaded
    hit = time.monotonic() - started
    return {"image cache miss (download + verify)": miss, "image cache hit": hit}
