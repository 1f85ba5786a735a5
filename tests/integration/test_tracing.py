"""One boot, one trace: with tracing on (KUMO_TRACE_EXPORT=file:DIR, each process writing its own
finished spans), the API request, the scheduler's decision, the agent's spawn and the conductor's
handling of its event are spans of a single trace whose id is the request id's UUID, each the
child of the one before; with KUMO_LOG_FORMAT=json every process logs that request as JSON
objects naming the request, the instance and the host."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cloud.tracing import read_spans, trace_id_of
from tests.integration.helpers import wait_until
from tests.stack import ROOT, AgentSpec, Stack, qcow2_bytes

NAME = "tracing"
SPANS = ROOT / "artifacts" / NAME / "spans"


@pytest.fixture(scope="module")
def stack():
    live = Stack(NAME, agents=[AgentSpec("compute-a")], schedulers=1, extra_env={
        "KUMO_TRACE_EXPORT": f"file:{SPANS}", "KUMO_LOG_FORMAT": "json"})
    with live.running():
        yield live


def _service(span: dict) -> str:
    return span["resource"]["attributes"]["service.name"]


def test_a_boot_is_one_trace_across_web_scheduler_agent_and_conductor(stack):
    api = stack.client()
    image_id = api.upload_image("trace-image", qcow2_bytes())
    created = api.post("/compute/v2.1/servers", {"server": {
        "name": "traced", "imageRef": image_id, "flavorRef": "1", "networks": "none"}})
    assert created.status_code == 202, created.text
    server_id = created.json()["server"]["id"]
    request_id = created.headers["X-OpenStack-Request-ID"]
    assert api.wait_for(server_id, {"ACTIVE", "ERROR"})["status"] == "ACTIVE"

    trace_id = trace_id_of(request_id)
    spans = wait_until(
        lambda: (found := read_spans(SPANS, trace_id)) and any(
            s["name"] == "conductor.instance_event" for s in found) and found,
        what="the conductor's span of the boot",
    )
    by_name = {s["name"]: s for s in spans}
    web = by_name["POST /compute/v2.1/servers"]
    scheduler = by_name["scheduler.schedule_instance"]
    spawn = by_name["compute.spawn"]
    conductor = by_name["conductor.instance_event"]

    assert {_service(s) for s in (web, scheduler, spawn, conductor)} == {
        "kumo-web", "kumo-scheduler", "kumo-compute", "kumo-conductor"}
    assert len({s["resource"]["attributes"]["process.pid"]
                for s in (web, scheduler, spawn, conductor)}) == 4
    assert {s["context"]["trace_id"] for s in spans} == {f"0x{trace_id}"}
    assert web["parent_id"] is None
    assert scheduler["parent_id"] == web["context"]["span_id"]
    assert spawn["parent_id"] == scheduler["context"]["span_id"]
    assert conductor["parent_id"] == spawn["context"]["span_id"]
    assert web["attributes"]["http.response.status_code"] == 202


def _json_lines(path: Path) -> list[dict]:
    """The log lines of one process that are log records: every one a JSON object (what is not
    is the process's own start-up output: Celery's banner, gunicorn's master)."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def test_every_process_logs_the_boot_as_json_with_request_instance_and_host(stack):
    api = stack.client()
    image_id = api.upload_image("log-image", qcow2_bytes())
    created = api.post("/compute/v2.1/servers", {"server": {
        "name": "logged", "imageRef": image_id, "flavorRef": "1", "networks": "none"}})
    server_id = created.json()["server"]["id"]
    request_id = created.headers["X-OpenStack-Request-ID"]
    assert api.wait_for(server_id, {"ACTIVE", "ERROR"})["status"] == "ACTIVE"

    web = _json_lines(stack.workdir / "web.log")
    assert any(line["request_id"] == request_id and line["logger"] == "kumo.access"
               for line in web)
    for process, host in (("scheduler0", None), ("compute-a", "compute-a"), ("conductor", None)):
        lines = [line for line in _json_lines(stack.workdir / f"{process}.log")
                 if line["request_id"] == request_id]
        assert lines, f"{process} logged nothing of {request_id} as JSON"
        assert {"time", "level", "logger", "message", "host"} <= lines[0].keys()
        assert any(line["instance"] == server_id for line in lines), process
        # Tracing is on as well: the lines name the request's trace.
        assert {line.get("trace_id") for line in lines} == {trace_id_of(request_id)}, process
        if host is not None:
            assert {line["host"] for line in lines} == {host}
