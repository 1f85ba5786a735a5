"""The agent's part of a request's trace (OpenTelemetry): a span for each task that arrives with a
W3C `traceparent` header, and that context in the headers of what the task publishes (the
conductor's instance events and host reports), so web → scheduler → agent → conductor is one
trace.

The agent never imports `cloud`, so this is its own copy of cloud/tracing.py's mechanism, with the
same setting: KUMO_TRACE_EXPORT unset (the default) leaves tracing off, OpenTelemetry unimported
and every hook unconnected; `otlp`, `otlp:URL` or `file:DIR` say where finished spans go, the last
as one JSON object per line per span in DIR/kumo-compute-<pid>.jsonl.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
    from opentelemetry.trace import Span, Tracer

EXPORT_ENV = "KUMO_TRACE_EXPORT"
SERVICE = "kumo-compute"
TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"

_tracer: Tracer | None = None
_processor: SpanProcessor | None = None
# Open task spans by Celery task id: task_prerun opens one, task_postrun closes it.
_task_spans: dict[str, tuple[Span, object]] = {}


def enabled() -> bool:
    return _tracer is not None


def setup(host: str, *, environ: Mapping[str, str] | None = None,
          exporter: SpanExporter | None = None) -> bool:
    """Start tracing in this agent (compute host `host`) when KUMO_TRACE_EXPORT asks for it or a
    test hands an `exporter`; True when on. Idempotent."""
    global _tracer, _processor
    if _tracer is not None:
        return True
    spec = (os.environ if environ is None else environ).get(EXPORT_ENV, "").strip()
    if exporter is None and not spec:
        return False
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    if exporter is not None:
        processor: SpanProcessor = SimpleSpanProcessor(exporter)
    elif spec.startswith("file:"):
        processor = SimpleSpanProcessor(_json_lines_exporter(Path(spec[5:])))
    elif spec == "otlp" or spec.startswith("otlp:"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        processor = BatchSpanProcessor(OTLPSpanExporter(endpoint=spec[5:] or None))
    else:
        raise ValueError(f"{EXPORT_ENV}={spec!r}: use otlp, otlp:URL or file:DIR")
    provider = TracerProvider(resource=Resource.create({
        "service.name": SERVICE, "host.name": socket.gethostname(), "kumo.compute_host": host,
        "process.pid": os.getpid(),
    }))
    provider.add_span_processor(processor)
    _processor = processor
    _tracer = provider.get_tracer("kumo.compute_agent")
    return True


def shutdown() -> None:
    """Flush and stop (tests; a process that exits flushes on its own)."""
    global _tracer, _processor
    if _processor is not None:
        _processor.shutdown()
    _tracer, _processor = None, None
    _task_spans.clear()


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
    """Trace the agent's tasks and carry the context in what it publishes."""
    if _tracer is None:
        return
    from celery import signals

    signals.before_task_publish.connect(_inject_into_headers, weak=False)
    signals.task_prerun.connect(_open_task_span, weak=False)
    signals.task_failure.connect(_mark_task_failed, weak=False)
    signals.task_postrun.connect(_close_task_span, weak=False)


def _inject_into_headers(headers: dict[str, Any] | None = None, **_: Any) -> None:
    if _tracer is None or headers is None or TRACEPARENT in headers:
        return
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    TraceContextTextMapPropagator().inject(headers)


def _open_task_span(task_id: str = "", task: Any = None, args: Any = None, **_: Any) -> None:
    if _tracer is None or task is None:
        return
    request = task.request
    headers = getattr(request, "headers", None) or {}
    parent = headers.get(TRACEPARENT) or getattr(request, TRACEPARENT, None)
    if not parent:
        return  # no one's request: nothing to join
    from opentelemetry import context, trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    state = headers.get(TRACESTATE) or getattr(request, TRACESTATE, None)
    incoming = {TRACEPARENT: parent, **({TRACESTATE: state} if state else {})}
    span = _tracer.start_span(
        task.name, context=TraceContextTextMapPropagator().extract(incoming),
        kind=trace.SpanKind.CONSUMER,
        attributes={"celery.task_id": task_id, **_message_attributes(args)},
    )
    _task_spans[task_id] = (span, context.attach(trace.set_span_in_context(span)))


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


def _json_lines_exporter(directory: Path) -> SpanExporter:
    """Finished spans appended as JSON lines to a file of this process's own (the format of
    cloud/span_files.py, which the dashboard and the tests read)."""
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    class JsonLinesExporter(SpanExporter):
        def __init__(self) -> None:
            directory.mkdir(parents=True, exist_ok=True)
            self.path = directory / f"{SERVICE}-{os.getpid()}.jsonl"
            self._lock = threading.Lock()

        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            text = "".join(span.to_json(indent=None) + "\n" for span in spans)
            try:
                with self._lock, self.path.open("a", encoding="utf-8") as out:
                    out.write(text)
            except OSError:
                return SpanExportResult.FAILURE
            return SpanExportResult.SUCCESS

    return JsonLinesExporter()
