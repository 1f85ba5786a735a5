"""Host weighers: each one small class that scores a host for a request; higher is better.

Raw scores are in different units (MB, vCPUs …), so `order_hosts` scales each weigher's scores to
0..1 across the candidate hosts before multiplying by the weigher's `multiplier` and summing. A
negative multiplier turns a spreading weigher into a packing one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from cloud.scheduler.host_state import HostState, RequestSpec


class HostWeigher(Protocol):
    multiplier: float

    def weigh(self, host: HostState, spec: RequestSpec) -> float: ...


def _normalised(values: list[float]) -> list[float]:
    low, high = min(values), max(values)
    if high == low:
        return [0.0 for _ in values]
    return [(v - low) / (high - low) for v in values]


@dataclass(frozen=True)
class Weighed:
    """One host's place in the order: its total and each weigher's part of it (scaled score ×
    multiplier), so a dry run can show why one host comes before another."""

    host: HostState
    total: float
    parts: dict[str, float] = field(default_factory=dict)


def weigh_hosts(
    weighers: list[HostWeigher], hosts: list[HostState], spec: RequestSpec
) -> list[Weighed]:
    """The hosts best-first with their weights; ties go to the host name, so the order is the
    same on every run."""
    if not hosts:
        return []
    parts: list[dict[str, float]] = [{} for _ in hosts]
    for weigher in weighers:
        scores = _normalised([weigher.weigh(h, spec) for h in hosts])
        for i, score in enumerate(scores):
            parts[i][type(weigher).__name__] = weigher.multiplier * score
    weighed = [Weighed(h, sum(p.values()), p) for h, p in zip(hosts, parts)]
    return sorted(weighed, key=lambda w: (-w.total, w.host.host))


def order_hosts(
    weighers: list[HostWeigher], hosts: list[HostState], spec: RequestSpec
) -> list[HostState]:
    """The hosts best-first (weigh_hosts without the weights)."""
    return [w.host for w in weigh_hosts(weighers, hosts, spec)]
