"""Drawing /metrics: the recorded families read back from the store, then every registered
scrape-time collector, in the Prometheus text format (prometheus_client does the format)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from . import store
from .families import COUNTER, HISTOGRAM, RECORDED, Family

log = logging.getLogger(__name__)

CollectFunction = Callable[[], Iterable[Metric]]

_collectors: dict[str, CollectFunction] = {}
_collectors_lock = threading.Lock()


def register_collector(name: str, collect: CollectFunction) -> None:
    """Have /metrics call `collect()` at every scrape and show what it returns. `name` labels its
    `kumo_metrics_collector_up` series; registering a name again replaces the earlier one."""
    with _collectors_lock:
        _collectors[name] = collect


def registered_collectors() -> dict[str, CollectFunction]:
    with _collectors_lock:
        return dict(_collectors)


def render() -> bytes:
    """The whole exposition. Never raises for a collector's failure: that collector's families are
    left out and its `kumo_metrics_collector_up` is 0."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Everything())
    return generate_latest(registry)


class _Everything(Collector):
    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "kumo_metrics_collector_up",
            "Whether each part of this scrape could be read (0: its families are missing).",
            labels=["collector"],
        )
        parts: dict[str, CollectFunction] = {"recorded": recorded_families}
        parts.update(registered_collectors())
        for name, collect in parts.items():
            try:
                families = list(collect())
            except Exception:
                log.exception("metrics collector %s failed", name)
                up.add_metric([name], 0)
                continue
            up.add_metric([name], 1)
            yield from families
        yield up


def recorded_families() -> list[Metric]:
    """The counters and histograms of families.RECORDED, summed over every process."""
    hashes = store.current().read(f.key for f in RECORDED)
    families: list[Metric] = []
    for family in RECORDED:
        fields = hashes.get(family.key, {})
        if family.kind == COUNTER:
            families.append(_counter(family, fields))
        elif family.kind == HISTOGRAM:
            families.extend(_histogram(family, fields))
    return families


def _counter(family: Family, fields: dict[str, str]) -> Metric:
    metric = CounterMetricFamily(family.name, family.help, labels=list(family.labels))
    for field, value in sorted(fields.items()):
        labels = _labels(field, len(family.labels))
        if labels is not None:
            metric.add_metric(labels, float(value))
    return metric


def _histogram(family: Family, fields: dict[str, str]) -> list[Metric]:
    # Fields hold one bucket's own count (not cumulative) or the sum; cumulate here.
    series: dict[tuple[str, ...], tuple[list[float], float]] = {}
    width = len(family.labels)
    for field, value in fields.items():
        parts = _labels(field, width + 1, parsed_tail=True)
        if parts is None:
            continue
        labels, part = tuple(parts[:width]), parts[width]
        counts, total = series.setdefault(labels, ([0.0] * (len(family.buckets) + 1), 0.0))
        if part == "sum":
            series[labels] = (counts, float(value))
        elif isinstance(part, int) and 0 <= part <= len(family.buckets):
            counts[part] += float(value)
    histogram = HistogramMetricFamily(family.name, family.help, labels=list(family.labels))
    counter = None
    if family.counted_as:
        counter = CounterMetricFamily(
            family.counted_as, family.counted_help, labels=list(family.labels)
        )
    for labels, (counts, total) in sorted(series.items()):
        bounds = [_le(b) for b in family.buckets] + ["+Inf"]
        cumulative, running = [], 0.0
        for bound, count in zip(bounds, counts, strict=True):
            running += count
            cumulative.append((bound, running))
        histogram.add_metric(list(labels), cumulative, total)
        if counter is not None:
            counter.add_metric(list(labels), running)
    return [histogram, counter] if counter is not None else [histogram]


def _labels(field: str, width: int, parsed_tail: bool = False) -> list | None:
    """A field's decoded parts, or None for one written by another version of the families."""
    try:
        parts = json.loads(field)
    except ValueError:
        return None
    if not isinstance(parts, list) or len(parts) != width:
        return None
    head = parts[:-1] if parsed_tail else parts
    if not all(isinstance(p, str) for p in head):
        return None
    return parts


def _le(bound: float) -> str:
    return repr(float(bound))
