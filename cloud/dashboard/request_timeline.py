"""One request's timeline on the instance page: what each process did for it, in time order.

It is built from what is stored: the action record the request opened, the events the scheduler,
the hosts and the conductor added to it (administrators only, as Nova's events are), and — when
traces are written to files (KUMO_TRACE_EXPORT=file:DIR, cloud/tracing.py) — the spans of the
request's trace, whose id is the request id's UUID. With KUMO_TRACE_URL (say
http://jaeger:16686/trace/{trace_id}) the page links to the trace where an OTLP collector keeps it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings

from cloud import tracing
from cloud.compute import action_records
from cloud.compute.models import Instance, InstanceAction


@dataclass(frozen=True)
class Step:
    at: datetime
    process: str  # a service (kumo-scheduler…) or a host
    what: str
    took_ms: float | None
    result: str
    depth: int = 0  # a span's nesting under the request's first span

    @property
    def indent(self) -> str:
        return "· " * self.depth


@dataclass(frozen=True)
class Timeline:
    action: InstanceAction
    trace_id: str
    steps: list[Step]
    trace_url: str
    spans_read: bool  # spans were looked for (file export on, and the viewer may see them)


def request_timeline(instance: Instance, request_id: str, *, with_events: bool) -> Timeline:
    """The timeline of `request_id` on `instance` (NotFound when it did nothing to it);
    `with_events` for a viewer allowed the per-step events and the spans."""
    action = action_records.get_action(instance, request_id)
    steps = [Step(action.start_time, "api", f"{action.action} requested", _ms(
        action.start_time, action.finish_time), action.message or "")]
    trace_id = tracing.trace_id_of(request_id)
    directory = tracing.span_dir()
    spans_read = with_events and directory is not None and bool(trace_id)
    if with_events:
        for event in action.events.all():  # loaded with the action, in time order
            steps.append(Step(event.start_time, event.host or "control plane", event.event,
                              _ms(event.start_time, event.finish_time), event.result or ""))
    if spans_read and directory is not None:
        steps.extend(_span_steps(tracing.read_spans(directory, trace_id)))
    steps.sort(key=lambda step: step.at)
    template = getattr(settings, "KUMO_TRACE_URL", "")
    trace_url = template.replace("{trace_id}", trace_id) if template and trace_id else ""
    return Timeline(action, trace_id, steps, trace_url, spans_read)


def _ms(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return (end - start).total_seconds() * 1000


def _span_steps(spans: list[dict]) -> list[Step]:
    parents = {span["context"]["span_id"]: span.get("parent_id") for span in spans}

    def depth(span_id: str | None) -> int:
        level = 0
        while span_id is not None and parents.get(span_id) and level < 20:
            span_id, level = parents[span_id], level + 1
        return level

    steps = []
    for span in spans:
        try:
            start = datetime.fromisoformat(span["start_time"])
            end = datetime.fromisoformat(span["end_time"])
        except (KeyError, TypeError, ValueError):
            continue
        attributes = span.get("resource", {}).get("attributes", {})
        process = attributes.get("kumo.compute_host") or attributes.get("service.name", "?")
        status = span.get("status", {}).get("status_code", "UNSET")
        steps.append(Step(start, str(process), f"span {span.get('name', '?')}", _ms(start, end),
                          "Error" if status == "ERROR" else "", depth(span["context"]["span_id"])))
    return steps
