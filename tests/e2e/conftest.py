"""Shared by the real-guest tests: a qemu:///system connection (libvirtd started if it is
installed but not running) and the tiny guest image, built offline by scripts/build_image.sh."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import release_after_last_user
from tests.e2e.lxc import lxc_cloud  # noqa: F401  (the container stack's session fixture)

REPO = Path(__file__).resolve().parents[2]
IMAGE = REPO / "var" / "guest" / "kumo-tiny.qcow2"
URI = "qemu:///system"
BANNER = "KUMO TINY GUEST"
BOOT_TIMEOUT = 90.0

libvirt = pytest.importorskip("libvirt")


def _open_qemu() -> object | None:
    try:
        return libvirt.open(URI)
    except libvirt.libvirtError:
        return None


def _start_libvirtd() -> str:
    """Start the daemons as scripts/setup.sh does (no systemd here); return why not, or ""."""
    if shutil.which("libvirtd") is None:
        return "libvirtd is not installed (KUMO_LIBVIRT_URI=qemu:///system make setup installs it)"
    if os.geteuid() != 0:
        return "libvirtd is not running and only root can start it"
    if os.path.exists("/dev/kvm"):
        # Without this every domain start re-probes qemu for a minute (platform notes).
        subprocess.run(["chgrp", "kvm", "/dev/kvm"], check=False, capture_output=True)
        os.chmod("/dev/kvm", 0o660)
    for daemon in ("virtlogd", "virtlockd", "libvirtd"):
        running = subprocess.run(["pgrep", "-x", daemon], capture_output=True, check=False)
        if running.returncode != 0:
            subprocess.run([daemon, "-d"], check=False, capture_output=True, timeout=30)
    return ""


def _connect_qemu() -> object:
    """A connection to qemu:///system, libvirtd started first if need be; a skip if none."""
    conn = _open_qemu()
    if conn is None:
        reason = _start_libvirtd()
        deadline = time.monotonic() + 15
        while not reason and conn is None and time.monotonic() < deadline:
            time.sleep(0.3)
            conn = _open_qemu()
        if conn is None:
            pytest.skip(reason or f"{URI} cannot be reached even after starting libvirtd")
    return conn


@pytest.fixture(scope="module")
def qemu_conn() -> Iterator[object]:
    conn = _connect_qemu()
    yield conn
    conn.close()  # type: ignore[attr-defined]


def _built_image() -> Path:
    result = subprocess.run(
        [str(REPO / "scripts" / "build_image.sh"), str(IMAGE)],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return IMAGE


@pytest.fixture(scope="module")
def tiny_image(qemu_conn: object) -> Path:
    return _built_image()


@pytest.fixture(scope="session")
def qemu_stack():
    """One stack for the session's tests of a single agent on the machine's qemu:///system
    (test_qemu_api, test_guest_stats_qemu, test_console_browser): each made the same stack of its
    own before, 10-15 s of start each. Each deletes its guests (and waits until they are gone)
    before the next module runs."""
    from tests.stack import AgentSpec, Stack

    conn = _connect_qemu()
    try:
        _built_image()
        live = Stack("qemu", agents=[AgentSpec("qemu-1", libvirt_uri=URI)], schedulers=1)
        with contextlib.ExitStack() as running:
            running.enter_context(live.running())
            release_after_last_user("qemu_stack", running.close)
            yield live
    finally:
        conn.close()  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def guest_image() -> Path:
    """The tiny guest, for tests whose guests run under libvirtds of their own (simulated hosts):
    built (or found up to date) without opening the machine's own qemu:///system."""
    result = subprocess.run(
        [str(REPO / "scripts" / "build_image.sh"), str(IMAGE)],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return IMAGE


# --- headless Chromium (Debian's, driven by Playwright), for the browser tests

CHROMIUM = "/usr/bin/chromium"
# What Chromium needs as root in a container (platform notes); Playwright adds --headless and a
# fresh profile directory itself.
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
ARTIFACTS = Path(os.environ.get("KUMO_ARTIFACTS_DIR", REPO / "artifacts"))

# How many distinct colours a sample of the canvas holds, and how many pixels it sampled.
CANVAS_COLOURS = """() => {
  const canvas = document.querySelector("#screen canvas");
  if (!canvas || !canvas.width || !canvas.height) return [0, 0];
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  const seen = new Set();
  let sampled = 0;
  for (let i = 0; i < data.length; i += 4 * 7) {
    seen.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
    sampled += 1;
  }
  return [seen.size, sampled];
}"""


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing (scripts/setup.sh --test installs Debian's chromium)")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS
        )
        yield launched
        launched.close()


def sign_in_as(browser, web: str, user: str, password: str, **context_args):
    """A page of a fresh browser context (its own cookies, storage and cache), signed in to the
    dashboard at `web` and on its overview."""
    context_args.setdefault("viewport", {"width": 1280, "height": 860})
    context = browser.new_context(**context_args)
    page = context.new_page()
    page.goto(f"{web}/login/")
    page.fill("#id_username", user)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{web}/")
    return page


# --- the many-hosts stack, one per test session (tests/e2e/multihost.py)


@pytest.fixture(scope="session")
def multihost():
    if os.geteuid() != 0:
        pytest.skip("simulated hosts need root (network and mount namespaces)")
    from tests.e2e.multihost import running_cloud

    result = subprocess.run(
        [str(REPO / "scripts" / "build_image.sh"), str(IMAGE)],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    with contextlib.ExitStack() as running:
        cloud = running.enter_context(running_cloud(IMAGE))
        release_after_last_user("multihost", running.close)
        yield cloud
