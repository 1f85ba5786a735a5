"""Host weighers: each one small class that scores a host for a request; higher is better.

Raw scores are in different units (MB, vCPUs …), so `order_hosts` scales each weigher's scores to
0..1 across the candidate hosts before multiplying by the weigher's `multiplier` and summing. A
negative multiplier turns a spreading weigher into a packing one.
"""

from __future__ import annotations

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


def order_hosts(
    weighers: list[HostWeigher], hosts: list[HostState], spec: RequestSpec
) -> list[HostState]:
    """The hosts best-first; ties go to the host name, so the order is the same on every run."""
    if not hosts:
        return []
    totals = [0.0] * len(hosts)
    for weigher in weighers:
        scores = _normalised([weigher.weigh(h, spec) for h in hosts])
        for i, score in enumerate(scores):
            totals[i] += weigher.multiplier * score
    ranked = sorted(zip(totals, hosts), key=lambda pair: (-pair[0], pair[1].host))
    return [host for _, host in ranked]
