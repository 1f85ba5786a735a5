"""Image uploads on a live stack — gunicorn, uvicorn workers, the WSGI app behind a2wsgi, PostgreSQL
— driven over HTTP, with the image directory and the database as witnesses only.

A chunked body is stored whole; a client that hangs up half-way stores nothing; bodies over the
limit are 413; and the web process SIGKILLed in the middle of uploads leaves nothing stuck (every
image it was writing is usable again: a new upload takes over at once, the sweep returns the rest
to queued), nothing lost (images stored before are intact) and nothing behind (no part file, no
stray file, no image in saving).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.integration.helpers import wait_until
from tests.stack import PYTHON, ROOT, ApiClient, Stack

RUNS = 3
IN_FLIGHT = 6  # per run; the web process has 2 workers × KUMO_WEB_THREADS (8) threads
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def live():
    # A stack of its own: its web process gets killed. No compute host is needed for images.
    stack = Stack("uploads", agents=[])
    with stack.running():
        yield stack


def image_dir(live: Stack) -> Path:
    return live.workdir / "var" / "images"


def part_files(live: Stack) -> list[str]:
    return sorted(p.name for p in image_dir(live).glob(".*.part"))


def stored_files(live: Stack) -> set[str]:
    return {p.name for p in image_dir(live).iterdir()} if image_dir(live).exists() else set()


def create(api: ApiClient, name: str = "up") -> str:
    made = api.post("/image/v2/images", {"name": name, "disk_format": "raw",
                                         "container_format": "bare"})
    assert made.status_code == 201, made.text
    return made.json()["id"]


def pieces(data: bytes, size: int = 64 * 1024 + 3) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def put_chunked(api: ApiClient, image_id: str, data: bytes):
    # A generator body: requests sends it with Transfer-Encoding: chunked and no Content-Length,
    # as python-glanceclient and Tempest do.
    return api.request("PUT", f"/image/v2/images/{image_id}/file", data=pieces(data),
                       headers={"Content-Type": "application/octet-stream"}, timeout=120)


def assert_holds(api: ApiClient, image_id: str, data: bytes) -> None:
    shown = api.get(f"/image/v2/images/{image_id}").json()
    assert shown["status"] == "active", shown
    assert shown["size"] == len(data)
    assert shown["checksum"] == hashlib.md5(data).hexdigest()
    assert shown["os_hash_value"] == hashlib.sha512(data).hexdigest()
    downloaded = api.get(f"/image/v2/images/{image_id}/file")
    assert downloaded.status_code == 200
    assert downloaded.content == data


def status(api: ApiClient, image_id: str) -> str:
    return api.get(f"/image/v2/images/{image_id}").json()["status"]


class OpenUpload:
    """A chunked PUT on a raw socket: it sends some of the body, then holds the connection open
    without finishing, as a client in the middle of a long upload does."""

    def __init__(self, live: Stack, token: str, image_id: str, first: bytes):
        self.sock = socket.create_connection(("127.0.0.1", live.port), timeout=30)
        self.sock.sendall(
            f"PUT /image/v2/images/{image_id}/file HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"X-Auth-Token: {token}\r\nContent-Type: application/octet-stream\r\n"
            "Transfer-Encoding: chunked\r\n\r\n".encode()
        )
        for piece in pieces(first):
            self.sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))

    def hang_up(self) -> None:
        self.sock.close()


def random_bytes(size: int) -> bytes:
    return os.urandom(size)


def sweep(live: Stack) -> int:
    """recover_abandoned_uploads() in a process of its own on the stack's database and image
    directory, as the conductor runs it for beat."""
    code = ("from cloud.images.uploads import recover_abandoned_uploads; "
            "print(recover_abandoned_uploads())")
    done = subprocess.run([PYTHON, "manage.py", "shell", "-c", code], cwd=ROOT, env=live.env,
                          check=True, capture_output=True, text=True, timeout=120)
    return int(done.stdout.strip().splitlines()[-1])


def wait_for_web(live: Stack, timeout: float = 60) -> None:
    def up() -> bool:
        try:
            return live.client().get("/image").status_code == 300
        except OSError:
            return False

    wait_until(up, timeout=timeout, interval=0.1, what="the web process to come back")


def test_a_chunked_upload_is_stored_whole(live):
    api = live.client()
    data = random_bytes(5 * MIB + 12345)
    image_id = create(api)
    response = put_chunked(api, image_id, data)
    assert response.status_code == 204, response.text
    assert_holds(api, image_id, data)
    assert part_files(live) == []


def test_a_client_that_hangs_up_half_way_stores_nothing(live):
    api = live.client()
    image_id = create(api)
    upload = OpenUpload(live, api.session.headers["X-Auth-Token"], image_id, random_bytes(3 * MIB))
    wait_until(lambda: status(api, image_id) == "saving", what="the upload to start")
    upload.hang_up()
    # Without its length the server cannot tell a cut body from a short one, unless the read
    # itself fails: the image must go back to queued, never active with 3 MiB.
    wait_until(lambda: status(api, image_id) != "saving", timeout=30, what="the upload to end")
    assert status(api, image_id) == "queued"
    assert part_files(live) == []
    assert image_id not in stored_files(live)
    data = random_bytes(MIB)
    assert put_chunked(api, image_id, data).status_code == 204
    assert_holds(api, image_id, data)


def test_bodies_over_the_limit_are_413_and_change_nothing(live):
    api = live.client()
    image_id = create(api, "before")
    count = len(api.get("/image/v2/images?limit=1000").json()["images"])
    big = "y" * (3 * MIB)  # over Django's DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MiB)
    response = api.post("/image/v2/images", {"name": "big", "note": big})
    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == 413
    response = api.request(
        "PATCH", f"/image/v2/images/{image_id}",
        data=json.dumps([{"op": "add", "path": "/note", "value": big}]),
        headers={"Content-Type": "application/openstack-images-v2.1-json-patch"},
    )
    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == 413
    assert len(api.get("/image/v2/images?limit=1000").json()["images"]) == count
    assert "note" not in api.get(f"/image/v2/images/{image_id}").json()
    listed = api.get("/image/v2/images?limit=0")
    assert listed.status_code == 400
    assert listed.json()["error"]["code"] == 400


def test_the_web_process_killed_in_the_middle_of_uploads(live):
    api = live.client()
    kept = {create(api, f"kept-{i}"): random_bytes(2 * MIB + i) for i in range(2)}
    for image_id, data in kept.items():
        assert put_chunked(api, image_id, data).status_code == 204

    figures = []
    for run in range(RUNS):
        api = live.client()
        token = api.session.headers["X-Auth-Token"]
        ids = [create(api, f"run{run}-{i}") for i in range(IN_FLIGHT)]
        with ThreadPoolExecutor(IN_FLIGHT) as pool:
            uploads = list(pool.map(
                lambda image_id, token=token: OpenUpload(live, token, image_id, random_bytes(3 * MIB)),
                ids))
        wait_until(lambda api=api, ids=ids: all(status(api, i) == "saving" for i in ids)
                   and len(part_files(live)) == IN_FLIGHT, what="every upload to be streaming")

        killed = time.monotonic()
        live.kill("web")
        for upload in uploads:
            upload.hang_up()
        assert len(part_files(live)) == IN_FLIGHT  # what a killed web process leaves
        live.restart("web")
        wait_for_web(live)
        back = time.monotonic() - killed
        api = live.client()

        # Half are uploaded again at once: no 409, no waiting for a sweep.
        again, swept = ids[: IN_FLIGHT // 2], ids[IN_FLIGHT // 2 :]
        recovered_after: dict[str, float] = {}
        data = {image_id: random_bytes(MIB + 7 * n) for n, image_id in enumerate(ids)}
        for image_id in again:
            response = put_chunked(api, image_id, data[image_id])
            assert response.status_code == 204, response.text
            recovered_after[image_id] = time.monotonic() - killed
        # The rest nobody touches: the sweep returns them to queued.
        reset = sweep(live)
        for image_id in swept:
            assert status(api, image_id) == "queued"
            recovered_after[image_id] = time.monotonic() - killed
        for image_id in swept:
            assert put_chunked(api, image_id, data[image_id]).status_code == 204
        for image_id in ids:
            assert_holds(api, image_id, data[image_id])

        left = part_files(live)
        saving = api.get("/image/v2/images?status=saving&limit=1000").json()["images"]
        figures.append({
            "run": run + 1, "in_flight": IN_FLIGHT,
            "ended": sum(status(api, i) == "active" for i in ids),
            "retaken_by_a_new_upload": len(again), "reset_by_the_sweep": reset,
            "web_back_after_s": round(back, 2),
            "slowest_recovery_s": round(max(recovered_after.values()), 2),
            "part_files_left": len(left), "images_left_saving": len(saving),
        })
        assert left == [] and saving == []

    # Nothing lost: what was stored before the kills is still there, byte for byte, and the image
    # directory holds exactly the files of active images.
    for image_id, data in kept.items():
        assert_holds(api, image_id, data)
    active = {i["id"] for i in api.get("/image/v2/images?limit=1000").json()["images"]
              if i["status"] == "active"}
    assert stored_files(live) == active
    (live.workdir / "killed_web_figures.json").write_text(json.dumps(figures, indent=1))
    print("\nkilled web process during uploads:", json.dumps(figures))
