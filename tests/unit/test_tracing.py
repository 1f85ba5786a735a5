"""Traces in the control plane (cloud/tracing.py): off by default; an API request's trace takes its
request id's UUID; the context rides in the outbox row and the message headers; a worker's task
span hangs under the span that sent the message; JSON log lines carry the ids."""

from __future__ import annotations

import json
import logging
import uuid
from types import SimpleNamespace

import pytest
from django.db import transaction
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from cloud import tracing
from cloud.logcontext import log_context
from cloud.logformat import JsonFormatter


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    assert tracing.setup("kumo-test", exporter=exporter)
    tracing.install_celery_hooks()
    yield exporter
    tracing.shutdown()


class _Task:
    """What the hooks read of a Celery task: its name and its request's headers."""

    def __init__(self, headers: dict | None, name: str) -> None:
        self.name = name
        self.request = SimpleNamespace(headers=headers, hostname="scheduler@it")


def _task(headers: dict | None, name: str = "scheduler.schedule_instance") -> _Task:
    return _Task(headers, name)


def _run_task(task_id: str, task, body=lambda: None) -> None:
    """What Celery's worker does around a task: the signals the hooks listen to."""
    from celery import signals

    signals.task_prerun.send(sender=task, task_id=task_id, task=task, args=[], kwargs={})
    try:
        body()
    finally:
        signals.task_postrun.send(sender=task, task_id=task_id, task=task, args=[], kwargs={},
                                  retval=None, state="SUCCESS")


def test_tracing_is_off_unless_an_exporter_is_named():
    assert tracing.setup("kumo-test", environ={}) is False
    assert not tracing.enabled()
    assert tracing.carrier() == {} and tracing.current_ids() is None
    with tracing.server_span("GET /") as span:
        assert span is None


def test_an_unknown_exporter_is_refused_with_its_setting_named():
    with pytest.raises(ValueError, match="KUMO_TRACE_EXPORT='zipkin'"):
        tracing.setup("kumo-test", environ={"KUMO_TRACE_EXPORT": "zipkin"})


def test_a_request_trace_takes_the_request_ids_uuid_as_its_trace_id(spans):
    request_id = f"req-{uuid.uuid4()}"
    with log_context(request_id), tracing.server_span("POST /compute/v2.1/servers"):
        pass
    (span,) = spans.get_finished_spans()
    assert f"{span.context.trace_id:032x}" == tracing.trace_id_of(request_id)
    assert tracing.trace_id_of("not-a-request") == ""


def test_a_task_span_hangs_under_the_span_that_sent_its_message(spans):
    with tracing.server_span("POST /servers") as web:
        headers = tracing.carrier()
    assert headers["traceparent"].split("-")[2] == f"{web.get_span_context().span_id:016x}"

    _run_task("t1", _task(headers))
    task_span = next(s for s in spans.get_finished_spans() if s.name.startswith("scheduler."))
    assert task_span.parent.span_id == web.get_span_context().span_id
    assert task_span.context.trace_id == web.get_span_context().trace_id


def test_a_task_without_a_trace_context_opens_no_span(spans):
    _run_task("t2", _task(None, "scheduler.report_alive"))
    assert spans.get_finished_spans() == ()


def test_what_a_task_publishes_carries_the_tasks_own_span(spans):
    from celery import signals

    with tracing.server_span("POST /servers"):
        incoming = tracing.carrier()
    published: dict = {}

    def publish():
        signals.before_task_publish.send(sender="compute.spawn", body=None, headers=published)

    _run_task("t3", _task(incoming), publish)
    task_span = next(s for s in spans.get_finished_spans() if s.name.startswith("scheduler."))
    assert published["traceparent"].split("-")[2] == f"{task_span.context.span_id:016x}"


@pytest.mark.django_db
def test_an_outbox_message_keeps_its_trace_context_for_a_late_publish(spans, monkeypatch):
    from cloud.outbox import relay
    from cloud.outbox.models import OutboxMessage

    published: list[dict] = []
    monkeypatch.setattr(relay.app, "send_task",
                        lambda *a, headers=None, **k: published.append(headers))
    with tracing.server_span("POST /servers") as web, transaction.atomic():
        relay.enqueue("scheduler.schedule_instance", ["x"], "scheduler")
    stored = OutboxMessage.objects.get()
    trace_id = f"{web.get_span_context().trace_id:032x}"
    assert stored.headers["traceparent"].split("-")[1] == trace_id

    # The relay, in another process and outside any span, sends the stored context.
    assert relay.publish(stored)
    assert published[-1]["traceparent"] == stored.headers["traceparent"]


@pytest.mark.django_db
def test_an_outbox_message_has_no_headers_when_tracing_is_off(monkeypatch):
    from cloud.outbox import relay

    published: list[object] = []
    monkeypatch.setattr(relay.app, "send_task",
                        lambda *a, headers=None, **k: published.append(headers))
    message = relay.enqueue("scheduler.schedule_instance", ["x"], "scheduler")
    assert message.headers == {}
    relay.publish(message)
    assert published == [None]


def _json_line(message: str) -> dict:
    record = logging.LogRecord("cloud.scheduler", logging.INFO, __file__, 1, message, (), None)
    line = JsonFormatter(host="ctl-1").format(record)
    assert "\n" not in line
    return json.loads(line)


def test_a_json_log_line_names_request_instance_and_host():
    with log_context("req-1", "inst-9"):
        line = _json_line("placed on compute-a")
    assert line["message"] == "placed on compute-a" and line["level"] == "INFO"
    assert (line["request_id"], line["instance"], line["host"]) == ("req-1", "inst-9", "ctl-1")
    assert line["logger"] == "cloud.scheduler" and line["time"].endswith("+00:00")
    assert "trace_id" not in line


def test_a_json_log_line_inside_a_span_carries_its_ids(spans):
    with tracing.server_span("POST /servers") as span:
        line = _json_line("hello\nworld")
    assert line["message"] == "hello\nworld"
    assert line["trace_id"] == f"{span.get_span_context().trace_id:032x}"
    assert line["span_id"] == f"{span.get_span_context().span_id:016x}"


def test_spans_reach_an_otlp_collector_over_http():
    """KUMO_TRACE_EXPORT=otlp:URL: spans are POSTed as OTLP protobuf (here to a stand-in
    collector, a plain HTTP server that decodes what it is sent)."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    received: list[ExportTraceServiceRequest] = []

    class Collector(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(ExportTraceServiceRequest.FromString(body))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/v1/traces"
    try:
        assert tracing.setup("kumo-web", environ={"KUMO_TRACE_EXPORT": f"otlp:{url}"})
        with log_context(f"req-{uuid.uuid4()}"), tracing.server_span("POST /servers"):
            pass
        tracing.shutdown()  # flushes the batch
    finally:
        tracing.shutdown()
        server.shutdown()
    (request,) = received
    (resource_spans,) = request.resource_spans
    service = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
    assert service["service.name"] == "kumo-web"
    assert [s.name for s in resource_spans.scope_spans[0].spans] == ["POST /servers"]
