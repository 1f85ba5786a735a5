"""Traces of one request across the processes it passes through: web → scheduler → agent →
conductor (OpenTelemetry).

Off unless KUMO_TRACE_EXPORT says where finished spans go:

    otlp        OTLP over HTTP to OTEL_EXPORTER_OTLP_ENDPOINT (the SDK's default: localhost:4318)
    otlp:URL    OTLP over HTTP to URL, e.g. http://collector:4318/v1/traces
    file:DIR    one JSON object per line per span in DIR/<service>-<pid>.jsonl (tests, a quick look)

Off, OpenTelemetry is not even imported and every helper returns at its first line, so a request
pays one `is None` test.

The context travels as W3C `traceparent` in each message's headers. The outbox stores it with the
row (cloud/outbox/relay.py), so a message the relay publishes late still belongs to its request;
a worker opens its task's span under it (install_celery_hooks). Only tasks that arrive with a
context are traced: periodic work (heartbeats, host reports, sweeps) is no one's request.

A trace started by an API request takes the request id's UUID as its trace id, so the id in every
log line, response header and action record names the trace too: req-<uuid> is trace <uuid hex>.
The compute agent has its own copy of this module (compute_agent/tracing.py): it never imports
`cloud`.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cloud.logcontext import request_id_var

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import SpanProcessor
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span, Tracer

EXPORT_ENV = "KUMO_TRACE_EXPORT"
TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"

_tracer: Tracer | None = None
_processor: SpanProcessor | None = None
# Open task spans by Celery task id: task_prerun opens one, task_postrun closes it.
_task_spans: dict[str, tuple[Span, object]] = {}


def enabled() -> bool:
    return _tracer is not None


def export_spec(environ: Mapping[str, str] | None = None) -> str:
    return (os.environ if environ is None else environ).get(EXPORT_ENV, "").strip()


def span_dir(environ: Mapping[str, str] | None = None) -> Path | None:
    """The directory spans are written to (file:DIR), for readers such as the dashboard."""
    spec = export_spec(environ)
    return Path(spec.removeprefix("file:")) if spec.startswith("file:") else None


def setup(service: str, *, environ: Mapping[str, str] | None = None,
          exporter: SpanExporter | None = None) -> bool:
    """Start tracing in this process as `service` (kumo-web, kumo-scheduler…) when
    KUMO_TRACE_EXPORT asks for it or a test hands an `exporter`; True when on. Idempotent."""
    global _tracer, _processor
    if _tracer is not None:
        return True
    spec = export_spec(environ)
    if exporter is None and not spec:
        return False
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    if exporter is not None:
        processor: SpanProcessor = SimpleSpanProcessor(exporter)
    elif spec.startswith("file:"):
        from cloud.span_files import JsonLinesExporter

        # Written as each span ends: a reader (a test, the dashboard) sees it at once.
        processor = SimpleSpanProcessor(JsonLinesExporter(Path(spec[5:]), service))
    elif spec == "otlp" or spec.startswith("otlp:"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        endpoint = spec[5:] or None
        processor = BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint))
    else:
        raise ValueError(f"{EXPORT_ENV}={spec!r}: use otlp, otlp:URL or file:DIR")
    resource = Resource.create({
        "service.name": service, "host.name": socket.gethostname(),
        "process.pid": os.getpid(),
    })
    provider = TracerProvider(resource=resource, id_generator=_request_id_generator())
    provider.add_span_processor(processor)
    _processor = processor
    _tracer = provider.get_tracer("kumo")
    return True


def shutdown() -> None:
    """Flush and stop (tests; a process that exits flushes on its own)."""
    global _tracer, _processor
    if _processor is not None:
        _processor.shutdown()
    _tracer, _processor = None, None
    _task_spans.clear()


def trace_id_of(request_id: str) -> str:
    """The trace id an API request's trace carries: its request id's UUID, as 32 hex digits;
    "" for an id that is not req-<uuid>."""
    try:
        return uuid.UUID(request_id.removeprefix("req-")).hex
    except ValueError:
        return ""


def _request_id_generator() -> Any:
    from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

    class RequestIdTraceIds(RandomIdGenerator):
        """A new trace takes the current request id's UUID as its id (see the module's doc)."""

        def generate_trace_id(self) -> int:
            trace_id = trace_id_of(request_id_var.get())
            return int(trace_id, 16) if trace_id else super().generate_trace_id()

    return RequestIdTraceIds()


@contextlib.contextmanager
def server_span(name: str, attributes: Mapping[str, Any] | None = None) -> Iterator[Span | None]:
    """A span for work that starts here (an API request); None when tracing is off."""
    if _tracer is None:
        yield None
        return
    from opentelemetry.trace import SpanKind

    with _tracer.start_as_current_span(name, kind=SpanKind.SERVER,
                                       attributes=dict(attributes or {})) as span:
        yield span


def carrier() -> dict[str, str]:
    """The current span's context as message headers ({} when off or outside any span)."""
    if _tracer is None:
        return {}
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    headers: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(headers)
    return headers


def current_ids() -> tuple[str, str] | None:
    """(trace id, span id) in hex of the current span, for log lines; None when off or outside."""
    if _tracer is None:
        return None
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"


def install_celery_hooks() -> None:
    """Trace this Celery process's tasks and carry the context in what it publishes."""
    if _tracer is None:
        return
    from celery import signals

    signals.before_task_publish.connect(_inject_into_headers, weak=False)
    signals.task_prerun.connect(_open_task_span, weak=False)
    signals.task_failure.connect(_mark_task_failed, weak=False)
    signals.task_postrun.connect(_close_task_span, weak=False)


def _inject_into_headers(headers: dict[str, Any] | None = None, **_: Any) -> None:
    # Messages from the outbox already carry the context they were stored with.
    if headers is not None and TRACEPARENT not in headers:
        headers.update(carrier())


def _open_task_span(task_id: str = "", task: Any = None, args: Any = None, **_: Any) -> None:
    if _tracer is None or task is None:
        return
    request = task.request
    headers = getattr(request, "headers", None) or {}
    parent = headers.get(TRACEPARENT) or getattr(request, TRACEPARENT, None)
    if not parent:
        return
    from opentelemetry import context, trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    state = headers.get(TRACESTATE) or getattr(request, TRACESTATE, None)
    incoming = {TRACEPARENT: parent, **({TRACESTATE: state} if state else {})}
    span = _tracer.start_span(
        task.name, context=TraceContextTextMapPropagator().extract(incoming),
        kind=trace.SpanKind.CONSUMER,
        attributes={"celery.task_id": task_id, "celery.hostname": str(request.hostname or ""),
                    **_message_attributes(args)},
    )
    token = context.attach(trace.set_span_in_context(span))
    _task_spans[task_id] = (span, token)


def _message_attributes(args: Any) -> dict[str, str]:
    """The instance and request a contract message names (its first argument, a dict)."""
    payload = args[0] if isinstance(args, (list, tuple)) and args else None
    if not isinstance(payload, dict):
        return {}
    named = {"kumo.instance": payload.get("instance_uuid"),
             "kumo.request_id": payload.get("request_id")}
    return {key: value for key, value in named.items() if isinstance(value, str) and value}


def _mark_task_failed(task_id: str = "", exception: BaseException | None = None,
                      **_: Any) -> None:
    opened = _task_spans.get(task_id)
    if opened is None or exception is None:
        return
    from opentelemetry.trace import Status, StatusCode

    opened[0].record_exception(exception)
    opened[0].set_status(Status(StatusCode.ERROR, type(exception).__name__))


def _close_task_span(task_id: str = "", **_: Any) -> None:
    opened = _task_spans.pop(task_id, None)
    if opened is None:
        return
    from opentelemetry import context

    span, token = opened
    context.detach(token)  # type: ignore[arg-type]
    span.end()


def read_spans(directory: Path, trace_id: str, *, limit: int = 500) -> list[dict[str, Any]]:
    """The spans of one trace found in a file:DIR export, oldest first (the dashboard's
    timeline). Reads every file of the directory: meant for a test or a small installation."""
    if not trace_id or not directory.is_dir():
        return []
    needle = f'"0x{trace_id}"'
    found: list[dict[str, Any]] = []
    for path in sorted(directory.glob("*.jsonl")):
        with path.open(encoding="utf-8", errors="replace") as lines:
            for line in lines:
                if needle in line:
                    with contextlib.suppress(ValueError):
                        found.append(json.loads(line))
    found.sort(key=lambda span: span.get("start_time") or "")
    return found[:limit]
