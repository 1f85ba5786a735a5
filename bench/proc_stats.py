"""CPU-seconds and resident memory of a stack's processes, read from /proc through psutil.

Figures per operation are CPU-seconds rather than wall time so that they compare across a noisy
2-core machine: what the stack spent, whoever else was running.
"""

from __future__ import annotations

import psutil


def _tree(pids: list[int]) -> list[psutil.Process]:
    found: list[psutil.Process] = []
    for pid in pids:
        try:
            root = psutil.Process(pid)
            found.append(root)
            found.extend(root.children(recursive=True))
        except psutil.NoSuchProcess:
            continue
    return found


def cpu_seconds(pids: list[int]) -> float:
    """user+system CPU of the processes and their children, so far."""
    total = 0.0
    for proc in _tree(pids):
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def rss_mib(pids: list[int]) -> float:
    """Resident memory of the processes and their children, MiB: each process's RSS, summed, so a
    page two processes share (libpython, libvirt, what a forked worker still shares with its
    parent) counts once per process, as ../shared/nova-anchor's figure for Nova counts it."""
    total = 0
    for proc in _tree(pids):
        try:
            total += proc.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total / 2**20


def pss_mib(pids: list[int]) -> float:
    """Proportional memory (shared pages split between their users, as forked workers share), MiB:
    what the processes cost the machine together, the fairer total of the two."""
    total = 0
    for proc in _tree(pids):
        try:
            total += proc.memory_full_info().pss
        except (psutil.NoSuchProcess, AttributeError):
            continue
    return total / 2**20


def rss_by_process(named: dict[str, int]) -> dict[str, float]:
    """RSS per process, MiB, as rss_mib counts it: each named process with its children (the web
    server's master and workers) apart, keyed by name, a child as name/pid order ("web/1" for the
    first worker). What the sum is made of, so a sitting shows which process grew."""
    out: dict[str, float] = {}
    for name, pid in named.items():
        for i, proc in enumerate(_tree([pid])):
            try:
                out[name if i == 0 else f"{name}/{i}"] = proc.memory_info().rss / 2**20
            except psutil.NoSuchProcess:
                continue
    return out
