"""The agent's part of a trace (compute_agent/tracing.py): a task that arrives with a traceparent
runs under a span of that trace, and the instance event it reports carries that span on to the
conductor; the agent's JSON log lines name request, instance, host and span."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from compute_agent import messages as msg
from compute_agent import tracing
from compute_agent.drivers.libvirt import LibvirtDriver
from compute_agent.logcontext import instance_context, request_context
from compute_agent.logformat import JsonFormatter
from compute_agent.manager import ComputeManager
from compute_agent.reporter import CeleryReporter
from compute_agent.worker import AgentConfig, create_app, register_tasks

from .conftest import SpawnRequestFactory

# A span of the scheduler's, as its message's header would name it.
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
SCHEDULER_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{SCHEDULER_SPAN}-01"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    assert tracing.setup("host-a", exporter=exporter)
    tracing.install_celery_hooks()
    yield exporter
    tracing.shutdown()


@pytest.fixture
def published() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """The name and headers of every message the agent publishes (after the tracing hook)."""
    from celery import signals

    seen: list[tuple[str, dict[str, Any]]] = []

    def record(sender: str = "", headers: dict[str, Any] | None = None, **_: Any) -> None:
        seen.append((sender, dict(headers or {})))

    signals.before_task_publish.connect(record, weak=False)
    yield seen
    signals.before_task_publish.disconnect(record)


def test_tracing_is_off_without_a_setting() -> None:
    assert tracing.setup("host-a", environ={}) is False
    assert not tracing.enabled() and tracing.current_ids() is None


def test_a_traced_spawn_runs_under_the_schedulers_span_and_reports_under_its_own(
    spans: InMemorySpanExporter, published: list, driver: LibvirtDriver,
    spawn_request: SpawnRequestFactory,
) -> None:
    app = create_app(AgentConfig(host="host-a", broker_url="memory://"))
    manager = ComputeManager("host-a", driver, CeleryReporter(app), host_ip="192.0.2.10")
    tasks = register_tasks(app, manager)

    request = spawn_request()
    tasks[msg.TASK_SPAWN].apply(args=[request.to_dict()], headers={"traceparent": TRACEPARENT})

    (span,) = spans.get_finished_spans()
    assert span.name == msg.TASK_SPAWN
    assert f"{span.context.trace_id:032x}" == TRACE_ID
    assert f"{span.parent.span_id:016x}" == SCHEDULER_SPAN
    assert span.attributes["kumo.instance"] == request.instance_uuid
    assert span.attributes["kumo.request_id"] == request.request_id
    event_headers = next(h for name, h in published if name == msg.TASK_INSTANCE_EVENT)
    assert event_headers["traceparent"] == f"00-{TRACE_ID}-{span.context.span_id:016x}-01"


def test_an_untraced_task_opens_no_span_and_sends_no_context(
    spans: InMemorySpanExporter, published: list, driver: LibvirtDriver,
    spawn_request: SpawnRequestFactory,
) -> None:
    app = create_app(AgentConfig(host="host-a", broker_url="memory://"))
    manager = ComputeManager("host-a", driver, CeleryReporter(app), host_ip="192.0.2.10")
    register_tasks(app, manager)[msg.TASK_SPAWN].apply(args=[spawn_request().to_dict()])

    assert spans.get_finished_spans() == ()
    assert published and all("traceparent" not in headers for _, headers in published)


def test_a_json_log_line_names_request_instance_host_and_span(spans: InMemorySpanExporter) -> None:
    from opentelemetry import trace

    record = logging.LogRecord("compute_agent.manager", logging.INFO, __file__, 1, "spawned",
                               (), None)
    provider_tracer = tracing._tracer
    assert provider_tracer is not None
    with request_context("req-7"), instance_context("inst-3"), \
            provider_tracer.start_as_current_span("compute.spawn"):
        line = json.loads(JsonFormatter("compute-a").format(record))
        current = trace.get_current_span().get_span_context()
    assert (line["request_id"], line["instance"], line["host"]) == ("req-7", "inst-3", "compute-a")
    assert line["message"] == "spawned" and line["level"] == "INFO"
    assert line["span_id"] == f"{current.span_id:016x}"
