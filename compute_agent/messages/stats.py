"""A host's guests' counters (contract 1.8), sent every KUMO_GUEST_STATS_INTERVAL seconds, with
the agent's task timings since the last report (contract 1.11)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Self

from compute_agent.messages.base import _NESTED, Message, _check_version, _flat, _names
from compute_agent.messages.names import CONTRACT_VERSION

__all__ = [
    "DiskStats",
    "GuestStats",
    "GuestStatsReport",
    "NicStats",
]


@dataclass
class DiskStats(Message):
    """One disk of a guest, as counted since its qemu started."""

    name: str  # the guest's device name (vda, sda…)
    read_bytes: int = 0
    read_requests: int = 0
    write_bytes: int = 0
    write_requests: int = 0
    errors: int | None = None  # None: the hypervisor does not count them


@dataclass
class NicStats(Message):
    """One NIC of a guest since its qemu started, counted as the guest sees it (libvirt turns a
    tap's counters round): rx is what the guest received, tx what it sent."""

    name: str  # the host's device (tap…); "" when the NIC has none (a user-mode NIC)
    mac_address: str = ""
    rx_bytes: int = 0
    rx_packets: int = 0
    rx_errors: int = 0
    rx_drops: int = 0
    tx_bytes: int = 0
    tx_packets: int = 0
    tx_errors: int = 0
    tx_drops: int = 0


@dataclass
class GuestStats(Message):
    """One guest's counters at one moment (libvirt's domain stats). Counters only ever grow while
    the same qemu runs; a smaller value than before means the guest started again."""

    uuid: str
    power_state: str
    cpu_time_ns: int = 0  # every vCPU and qemu's own threads, since qemu started
    vcpus: int = 0
    vcpu_times_ns: list[int] = field(default_factory=list)  # per vCPU; [] when not told
    memory_max_kib: int = 0  # what the guest may have (the balloon's maximum)
    memory_kib: int = 0  # what it has now (the balloon's current size)
    memory_rss_kib: int | None = None  # host memory qemu uses for it; None when not told
    # The guest's own view, from its balloon driver's statistics; None when it does not report.
    memory_unused_kib: int | None = None
    memory_usable_kib: int | None = None
    disks: list[DiskStats] = field(default_factory=list)
    nics: list[NicStats] = field(default_factory=list)


@dataclass
class GuestStatsReport(Message):
    """A host's guests' counters, collected at `collected_at` (epoch seconds, the host's clock);
    the next report follows about `interval` seconds later."""

    host: str
    collected_at: float
    interval: float
    guests: list[GuestStats] = field(default_factory=list)
    # The agent's tasks finished since the last report (compute_agent/task_timing.py):
    # [queue, task name, outcome, run seconds] and [queue, seconds waited in the queue].
    task_runs: list[list[Any]] = field(default_factory=list)
    task_waits: list[list[Any]] = field(default_factory=list)

    # Hundreds of guests every few seconds: built and parsed field by field, without
    # dataclasses.asdict's deep copies and the generic walk (about 10× and 3× faster for 250
    # guests; bench/guest_stats_bench.py). Same dicts as Message's own.
    def to_dict(self) -> dict[str, Any]:
        data = _flat(self)
        data["guests"] = [
            {**_flat(g), "vcpu_times_ns": list(g.vcpu_times_ns),
             "disks": [_flat(d) for d in g.disks], "nics": [_flat(n) for n in g.nics]}
            for g in self.guests
        ]
        data["contract_version"] = CONTRACT_VERSION
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        _check_version(cls.__name__, data)
        guests = []
        for g in data.get("guests") or []:
            stats = GuestStats(**_known(GuestStats, g))
            stats.disks = [DiskStats(**_known(DiskStats, d)) for d in g.get("disks") or []]
            stats.nics = [NicStats(**_known(NicStats, n)) for n in g.get("nics") or []]
            guests.append(stats)
        report = cls(**_known(cls, data))
        report.guests = guests
        return report


_NESTED_FIELDS = frozenset({"guests", "disks", "nics"})


def _known(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """The entries of `data` that are fields of `cls` (unknown ones are a newer sender's),
    nested lists left for the caller."""
    return {k: data[k] for k in _names(cls) if k in data and k not in _NESTED_FIELDS}


_NESTED.update({
    ("GuestStats", "disks"): DiskStats,
    ("GuestStats", "nics"): NicStats,
    ("GuestStatsReport", "guests"): GuestStats,
})
