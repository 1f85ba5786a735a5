"""Glance's interoperable import through the API: the methods on offer, glance-direct (stage, then
import) end to end, web-download from a server on this machine and refused from one it cannot
reach, and the tasks that record each import."""

from __future__ import annotations

import hashlib
import http.server
import socket
import threading
import uuid

import pytest

from cloud.images import storage
from cloud.images.models import Image, ImageTask

DATA = b"staged image bytes\n" * 2048


@pytest.fixture(autouse=True)
def image_dir(settings, tmp_path):
    settings.KUMO_IMAGE_DIR = tmp_path / "images"
    return settings.KUMO_IMAGE_DIR


def create(api, **body) -> dict:
    body = {"name": "img", "disk_format": "raw", "container_format": "bare", **body}
    response = api.post("/image/v2/images", body)
    assert response.status_code == 201, response.content
    return response.json()


def stage(api, image_id: str, data: bytes = DATA):
    return api.client.put(f"/image/v2/images/{image_id}/stage", data=data,
                          content_type="application/octet-stream", **api._headers(None))


def do_import(api, image_id: str, method: str = "glance-direct", **extra):
    return api.post(f"/image/v2/images/{image_id}/import",
                    {"method": {"name": method, **extra}, "all_stores": True})


def show(api, image_id: str) -> dict:
    return api.get(f"/image/v2/images/{image_id}").json()


def test_import_info_offers_glance_direct_and_web_download(api_as, reader):
    body = api_as(reader).get("/image/v2/info/import").json()
    assert body["import-methods"]["value"] == ["glance-direct", "web-download"]
    assert api_as(None).get("/image/v2/info/import").status_code == 401


def test_glance_direct_stages_then_imports_to_active(api_as, member, reader, image_dir):
    api = api_as(member)
    image = create(api)
    assert stage(api, image["id"]).status_code == 204
    staged = show(api_as(reader), image["id"])
    assert staged["status"] == "uploading"
    assert (image_dir / f"{image['id']}.staged").is_file()
    assert not (image_dir / image["id"]).exists()

    response = do_import(api, image["id"])
    assert response.status_code == 202, response.content
    done = show(api, image["id"])
    assert done["status"] == "active"
    assert done["size"] == len(DATA)
    assert done["checksum"] == hashlib.md5(DATA).hexdigest()
    assert done["os_hash_value"] == hashlib.sha512(DATA).hexdigest()
    got = api.get(f"/image/v2/images/{image['id']}/file")
    assert b"".join(got.streaming_content) == DATA
    assert sorted(p.name for p in image_dir.iterdir()) == [image["id"]]

    tasks = api_as(reader).get(f"/image/v2/images/{image['id']}/tasks").json()["tasks"]
    assert len(tasks) == 1
    task = tasks[0]
    assert task["status"] == "success"
    assert task["type"] == "api_image_import"
    assert task["image_id"] == image["id"]
    assert task["request_id"] == response["X-OpenStack-Request-ID"]
    assert task["user_id"] == member.user.id
    assert task["input"]["import_req"]["method"]["name"] == "glance-direct"


def test_import_before_staging_is_409_and_nothing_changes(api_as, member):
    api = api_as(member)
    image = create(api)
    response = do_import(api, image["id"])
    assert response.status_code == 409
    assert "staged" in response.json()["error"]["message"]
    assert show(api, image["id"])["status"] == "queued"


def test_staging_twice_is_409_and_keeps_the_first(api_as, member, image_dir):
    api = api_as(member)
    image = create(api)
    assert stage(api, image["id"]).status_code == 204
    assert stage(api, image["id"], b"other bytes").status_code == 409
    assert (image_dir / f"{image['id']}.staged").read_bytes() == DATA


def test_a_staging_refused_by_the_inspector_leaves_the_image_queued(api_as, member, image_dir):
    api = api_as(member)
    image = create(api, disk_format="qcow2")
    response = stage(api, image["id"], b"not a qcow2 at all" * 100)
    assert response.status_code == 400
    assert show(api, image["id"])["status"] == "queued"
    assert list(image_dir.iterdir()) == []
    # …and the image can be staged again.
    image2 = create(api)
    assert stage(api, image2["id"]).status_code == 204


def test_who_may_stage_and_import(api_as, member, reader, other):
    image = create(api_as(member))
    assert stage(api_as(reader), image["id"]).status_code == 403
    assert stage(api_as(other), image["id"]).status_code == 404
    assert stage(api_as(member), image["id"]).status_code == 204
    assert do_import(api_as(reader), image["id"]).status_code == 403
    assert do_import(api_as(other), image["id"]).status_code == 404
    assert Image.objects.get(pk=image["id"]).status == "uploading"


def test_bad_import_bodies_are_400(api_as, member):
    api = api_as(member)
    image = create(api)
    stage(api, image["id"])
    assert do_import(api, image["id"], method="copy-image").status_code == 400
    assert api.post(f"/image/v2/images/{image['id']}/import", {"method": "x"}).status_code == 400
    assert api.post(f"/image/v2/images/{image['id']}/import",
                    {"method": {"name": "glance-direct"}, "stores": ["ceph"]}).status_code == 400
    assert Image.objects.get(pk=image["id"]).status == "uploading"


def test_deleting_a_staged_image_removes_its_staged_data(
    api_as, member, image_dir, django_capture_on_commit_callbacks
):
    api = api_as(member)
    image = create(api)
    stage(api, image["id"])
    with django_capture_on_commit_callbacks(execute=True):
        assert api.delete(f"/image/v2/images/{image['id']}").status_code == 204
    assert list(image_dir.iterdir()) == []


# --- web-download


@pytest.fixture
def web_server():
    """An HTTP server on 127.0.0.1 serving DATA at /image.raw (and 404 elsewhere)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path != "/image.raw":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(DATA)))
            self.end_headers()
            self.wfile.write(DATA)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_web_download_from_an_allowed_local_server_goes_active(
    api_as, member, web_server, settings
):
    settings.KUMO_IMAGE_IMPORT_ALLOWED_HOSTS = ["127.0.0.1"]
    api = api_as(member)
    image = create(api)
    response = do_import(api, image["id"], "web-download", uri=f"{web_server}/image.raw")
    assert response.status_code == 202, response.content
    done = show(api, image["id"])
    assert done["status"] == "active"
    assert done["checksum"] == hashlib.md5(DATA).hexdigest()
    assert storage.path_for(image["id"]).read_bytes() == DATA
    task = ImageTask.objects.get(image_id=image["id"])
    assert task.status == "success" and task.input["import_req"]["method"]["uri"].endswith(".raw")


def test_web_download_of_a_local_address_is_refused_unless_the_operator_allows_it(
    api_as, member, web_server
):
    api = api_as(member)
    image = create(api)
    response = do_import(api, image["id"], "web-download", uri=f"{web_server}/image.raw")
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert "does not pass filtering" in message and "127.0.0.1" in message
    assert show(api, image["id"])["status"] == "queued"


def test_web_download_from_a_host_that_does_not_answer_is_refused_clearly(
    api_as, member, settings
):
    # A port nothing listens on: bind one, then close it.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.KUMO_IMAGE_IMPORT_ALLOWED_HOSTS = ["127.0.0.1"]
    api = api_as(member)
    image = create(api)
    uri = f"http://127.0.0.1:{port}/image.raw"
    response = do_import(api, image["id"], "web-download", uri=uri)
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith(f"Could not reach {uri}")
    assert show(api, image["id"])["status"] == "queued"
    task = ImageTask.objects.get(image_id=image["id"])
    assert task.status == "failure" and uri in task.message


def test_web_download_of_a_name_that_does_not_resolve_names_it(api_as, member):
    api = api_as(member)
    image = create(api)
    response = do_import(api, image["id"], "web-download",
                         uri="http://does-not.exist.invalid/no/possible/way")
    assert response.status_code == 400
    assert "does-not.exist.invalid" in response.json()["error"]["message"]


def test_web_download_answering_404_is_refused(api_as, member, web_server, settings):
    settings.KUMO_IMAGE_IMPORT_ALLOWED_HOSTS = ["127.0.0.1"]
    api = api_as(member)
    image = create(api)
    response = do_import(api, image["id"], "web-download", uri=f"{web_server}/missing")
    assert response.status_code == 400
    assert "404" in response.json()["error"]["message"]
    assert show(api, image["id"])["status"] == "queued"


@pytest.mark.parametrize("uri", ["http://127.0.0.1/x", "http://10.0.0.1/x", "http://[::1]/x",
                                 "http://169.254.169.254/latest/meta-data", "http://localhost/x"])
def test_web_download_never_fetches_from_a_private_address(api_as, member, uri):
    """Kumo must not become a probe of its own network (Glance's import filtering)."""
    api = api_as(member)
    image = create(api)
    response = do_import(api, image["id"], "web-download", uri=uri)
    assert response.status_code == 400
    assert "is not a public address" in response.json()["error"]["message"]
    assert Image.objects.get(pk=image["id"]).status == "queued"


@pytest.mark.parametrize("uri", ["ftp://example.com/x", "file:///etc/passwd",
                                 "http://example.com:8080/x", "not a url"])
def test_web_download_refuses_other_schemes_and_ports(api_as, member, uri):
    api = api_as(member)
    image = create(api)
    response = do_import(api, image["id"], "web-download", uri=uri)
    assert response.status_code == 400
    assert Image.objects.get(pk=image["id"]).status == "queued"


def test_web_download_needs_a_queued_image_and_a_uri(api_as, member):
    api = api_as(member)
    image = create(api)
    assert do_import(api, image["id"], "web-download").status_code == 400
    stage(api, image["id"])
    assert do_import(api, image["id"], "web-download", uri="http://example.com/x"
                     ).status_code == 409


# --- /v2/tasks


def test_admin_import_task_from_a_local_server_makes_an_active_image(
    api_as, admin, member, web_server, settings
):
    settings.KUMO_IMAGE_IMPORT_ALLOWED_HOSTS = ["127.0.0.1"]
    body = {"type": "import", "input": {
        "import_from": f"{web_server}/image.raw", "import_from_format": "raw",
        "image_properties": {"name": "from-task", "disk_format": "raw",
                             "container_format": "bare"}}}
    assert api_as(member).post("/image/v2/tasks", body).status_code == 403
    response = api_as(admin).post("/image/v2/tasks", body)
    assert response.status_code == 201, response.content
    task = response.json()
    assert task["status"] == "success"
    image = Image.objects.get(pk=task["result"]["image_id"])
    assert image.status == "active" and image.name == "from-task"
    shown = api_as(admin).get(f"/image/v2/tasks/{task['id']}").json()
    assert shown["id"] == task["id"] and shown["input"]["import_from"].endswith(".raw")
    listed = api_as(admin).get("/image/v2/tasks").json()
    assert [t["id"] for t in listed["tasks"]] == [task["id"]]
    assert api_as(admin).get(f"/image/v2/tasks/{uuid.uuid4()}").status_code == 404


def test_an_import_task_from_nowhere_is_refused_before_anything_is_made(api_as, admin):
    body = {"type": "import", "input": {
        "import_from": "http://dummy-img-file.invalid.qcow2", "import_from_format": "qcow2",
        "image_properties": {"name": "x", "disk_format": "qcow2", "container_format": "bare"}}}
    response = api_as(admin).post("/image/v2/tasks", body)
    assert response.status_code == 400
    assert Image.objects.count() == 0 and ImageTask.objects.count() == 0
