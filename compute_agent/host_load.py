"""What the host itself says about its uptime and load, from /proc (Linux), for the host report:
Nova's hypervisor uptime is the `uptime` command's line, which the control plane composes from
these two at the time it is asked."""

from __future__ import annotations

import time
from pathlib import Path

PROC = Path("/proc")


def boot_time(proc: Path = PROC) -> float:
    """When the host booted, in epoch seconds (now minus /proc/uptime); 0.0 when unknown."""
    try:
        seconds = float((proc / "uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0
    return time.time() - seconds


def load_average(proc: Path = PROC) -> list[float]:
    """The 1, 5 and 15 minute load averages of /proc/loadavg; [] when unknown."""
    try:
        return [float(v) for v in (proc / "loadavg").read_text().split()[:3]]
    except (OSError, ValueError):
        return []
