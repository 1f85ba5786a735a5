"""Host filters: each one small class, one rule, in its own module.

A filter answers one question about one host for one request (`host_passes`), and says why, in
numbers, when the answer is no (`reason`: "RAM: needs 2048 MiB, 1536 free after the 1.5× ratio").
`run_filters` applies them in order and remembers which filter removed which hosts, because a user
who gets "No valid host" deserves to know why; the reasons are only worded when someone asks (a
fault, a dry run: cloud/scheduler/explain.py), so a decision that finds a host pays nothing for
them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from cloud.scheduler.host_state import HostState, RequestSpec

# A fault's details list every removed host by name, but word the reasons of only this many per
# filter: at a thousand hosts the whole story belongs to the dry run, not to every failed build.
REASONS_PER_FILTER = 10


class HostFilter(Protocol):
    def host_passes(self, host: HostState, spec: RequestSpec) -> bool: ...

    def reason(self, host: HostState, spec: RequestSpec) -> str: ...


def applies(host_filter: HostFilter, spec: RequestSpec) -> bool:
    """Whether the filter runs for this request: every filter does, except when an admin forced
    the destination ("zone:host:node"), where only those marked `runs_when_forced` do, as Nova
    skips its filters for a forced host."""
    return not spec.force_destination or getattr(host_filter, "runs_when_forced", False)


def filter_name(host_filter: HostFilter) -> str:
    return type(host_filter).__name__


def reason_for(host_filter: HostFilter, host: HostState, spec: RequestSpec) -> str:
    """Why `host_filter` rejects `host`; a filter an operator added without a `reason` (the
    list is in settings) is named instead of explained."""
    explain = getattr(host_filter, "reason", None)
    return explain(host, spec) if explain is not None else f"removed by {filter_name(host_filter)}"


def amount(value: float) -> str:
    """A capacity figure as people write it: 1536, not 1536.0; 2.5 stays 2.5."""
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def ratio(value: float) -> str:
    """An allocation ratio as written in the reasons: 1.5×, 16.0×."""
    return f"{float(value)}×"


@dataclass
class Removal:
    """The hosts one filter removed from those still in the running."""

    host_filter: HostFilter
    hosts: list[HostState]

    @property
    def name(self) -> str:
        return filter_name(self.host_filter)

    def reasons(self, spec: RequestSpec) -> list[tuple[str, str]]:
        return [(h.host, reason_for(self.host_filter, h, spec)) for h in self.hosts]


@dataclass
class FilterResult:
    considered: int
    passed: list[HostState]
    spec: RequestSpec | None = None
    # Each filter that ran and the hosts it removed, in the order the filters ran.
    removals: list[Removal] = field(default_factory=list)

    @property
    def removed(self) -> list[tuple[str, list[str]]]:
        """(filter name, names of the hosts it removed), in the order the filters ran."""
        return [(r.name, [h.host for h in r.hosts]) for r in self.removals]

    def describe(self) -> str:
        """Why hosts were dropped, for the no-valid-host fault's details (admins): one line per
        filter that ran, then each removed host's reason in numbers."""
        if self.considered == 0:
            return "no compute hosts are registered"
        lines = [f"{_hosts(self.considered)} considered."]
        for removal in self.removals:
            names = [h.host for h in removal.hosts]
            which = f" ({', '.join(names)})" if names else ""
            lines.append(f"{removal.name} removed {_hosts(len(names))}{which}.")
            if self.spec is None:
                continue
            shown = Removal(removal.host_filter, removal.hosts[:REASONS_PER_FILTER])
            lines.extend(f"  {host}: {why}" for host, why in shown.reasons(self.spec))
            if len(removal.hosts) > REASONS_PER_FILTER:
                lines.append(f"  … and {len(removal.hosts) - REASONS_PER_FILTER} more.")
        return "\n".join(lines)

    def counts(self) -> str:
        """The same story without host names, for users who may not see the hosts."""
        if self.considered == 0:
            return "no compute hosts are registered"
        parts = [
            f"{r.name} removed {len(r.hosts)} of {_hosts(self.considered)}"
            for r in self.removals
            if r.hosts
        ]
        return "; ".join(parts) if parts else f"{_hosts(self.considered)} passed the filters"


def _hosts(count: int) -> str:
    return f"{count} host" if count == 1 else f"{count} hosts"


def run_filters(
    filters: list[HostFilter], hosts: list[HostState], spec: RequestSpec
) -> FilterResult:
    result = FilterResult(considered=len(hosts), passed=list(hosts), spec=spec)
    for host_filter in filters:
        # Once nothing is left, later filters have nothing to say about this request.
        if not result.passed:
            break
        if not applies(host_filter, spec):
            continue
        kept: list[HostState] = []
        dropped: list[HostState] = []
        for h in result.passed:
            (kept if host_filter.host_passes(h, spec) else dropped).append(h)
        result.removals.append(Removal(host_filter, dropped))
        result.passed = kept
    return result
