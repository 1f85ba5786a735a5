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
    weighed = [Weighed(h, sum(p.values()), p)
               for h, p in zip(hosts, _parts(weighers, hosts, spec))]
    return sorted(weighed, key=lambda w: (-w.total, w.host.host))


def best_host(weighers: list[HostWeigher], hosts: list[HostState],
              spec: RequestSpec) -> HostState | None:
    """weigh_hosts(...)[0].host without building every host's record and sorting them all: a
    batch picks one host per boot (cloud/scheduler/batch.py)."""
    if not hosts:
        return None
    parts = _parts(weighers, hosts, spec)
    return min(zip(hosts, parts), key=lambda hp: (-sum(hp[1].values()), hp[0].host))[0]


def _parts(weighers: list[HostWeigher], hosts: list[HostState],
           spec: RequestSpec) -> list[dict[str, float]]:
    """Each host's weigher parts: each weigher's scores scaled to 0..1 over `hosts`, times its
    multiplier, in the weighers' order (the sum of a host's parts is its total)."""
    parts: list[dict[str, float]] = [{} for _ in hosts]
    for weigher in weighers:
        scores = _normalised([weigher.weigh(h, spec) for h in hosts])
        for i, score in enumerate(scores):
            parts[i][type(weigher).__name__] = weigher.multiplier * score
    return parts


def order_hosts(
    weighers: list[HostWeigher], hosts: list[HostState], spec: RequestSpec
) -> list[HostState]:
    """The hosts best-first (weigh_hosts without the weights)."""
    return [w.host for w in weigh_hosts(weighers, hosts, spec)]
