"""Host filters: each one small class, one rule, in its own module.

A filter answers one question about one host for one request (`host_passes`). `run_filters` applies
them in order and remembers which filter removed which hosts, because a user who gets "No valid
host" deserves to know why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from cloud.scheduler.host_state import HostState, RequestSpec


class HostFilter(Protocol):
    def host_passes(self, host: HostState, spec: RequestSpec) -> bool: ...


def applies(host_filter: HostFilter, spec: RequestSpec) -> bool:
    """Whether the filter runs for this request: every filter does, except when an admin forced
    the destination ("zone:host:node"), where only those marked `runs_when_forced` do, as Nova
    skips its filters for a forced host."""
    return not spec.force_destination or getattr(host_filter, "runs_when_forced", False)


@dataclass
class FilterResult:
    considered: int
    passed: list[HostState]
    # (filter name, hosts it removed), in the order the filters ran
    removed: list[tuple[str, list[str]]] = field(default_factory=list)

    def describe(self) -> str:
        """Why hosts were dropped, one line per filter that ran, for the no-valid-host fault."""
        if self.considered == 0:
            return "no compute hosts are registered"
        lines = [f"{_hosts(self.considered)} considered."]
        for name, hosts in self.removed:
            which = f" ({', '.join(hosts)})" if hosts else ""
            lines.append(f"{name} removed {_hosts(len(hosts))}{which}.")
        return "\n".join(lines)


    def counts(self) -> str:
        """The same story without host names, for users who may not see the hosts."""
        if self.considered == 0:
            return "no compute hosts are registered"
        parts = [
            f"{name} removed {len(hosts)} of {_hosts(self.considered)}"
            for name, hosts in self.removed
            if hosts
        ]
        return "; ".join(parts) if parts else f"{_hosts(self.considered)} passed the filters"


def _hosts(count: int) -> str:
    return f"{count} host" if count == 1 else f"{count} hosts"


def run_filters(
    filters: list[HostFilter], hosts: list[HostState], spec: RequestSpec
) -> FilterResult:
    result = FilterResult(considered=len(hosts), passed=list(hosts))
    for host_filter in filters:
        # Once nothing is left, later filters have nothing to say about this request.
        if not result.passed:
            break
        if not applies(host_filter, spec):
            continue
        kept = [h for h in result.passed if host_filter.host_passes(h, spec)]
        kept_names = {h.host for h in kept}
        dropped = [h.host for h in result.passed if h.host not in kept_names]
        result.removed.append((type(host_filter).__name__, dropped))
        result.passed = kept
    return result
