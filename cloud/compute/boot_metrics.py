"""How a boot ended, counted for /metrics (`kumo_boots_total{outcome}`) and the dashboard's System
page: one call where each way a build can end is decided — the scheduler (no valid host), the
conductor (spawned, failed on its last try, timed out). Unshelving an offloaded server spawns too,
but is not a boot: the callers leave it out."""

from __future__ import annotations

from cloud import metrics
from cloud.metrics.families import BOOTS

ACTIVE = "active"
NO_VALID_HOST = "no_valid_host"
SPAWN_FAILED = "spawn_failed"
TIMED_OUT = "timed_out"
FAILED = (NO_VALID_HOST, SPAWN_FAILED, TIMED_OUT)


def ended(outcome: str) -> None:
    metrics.inc(BOOTS, outcome)
