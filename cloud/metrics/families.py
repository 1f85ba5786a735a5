"""Every metric family Kumo records as things happen, defined once: name, type, help and labels.

These are the counters and histograms that processes bump on their hot paths (the API, the
scheduler, claims, Celery tasks); the store keeps them in Redis so that any process's /metrics
shows every process's counts. Gauges of the current state (instances by state, host capacity,
queue depth) are read at scrape time instead, by the collectors registered with
`cloud.metrics.register_collector` — their names are listed in docs/observability.md.

Label values must come from bounded sets (a route pattern, never a raw path; a filter's class name;
a queue name) and never carry a secret: a label is shown to anyone who may scrape.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

COUNTER = "counter"
HISTOGRAM = "histogram"

# Seconds. API calls and scheduler decisions are milliseconds when well; a boot's tasks can take
# longer (image download), so the top buckets reach a minute.
LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)


@dataclass(frozen=True)
class Family:
    """A metric family as exposed (a counter's name without the `_total` Prometheus adds)."""

    name: str
    kind: str
    help: str
    labels: tuple[str, ...]
    buckets: tuple[float, ...] = ()
    # A histogram may also be shown as a plain counter of its observations under this name.
    counted_as: str = ""
    counted_help: str = ""

    @cached_property
    def key(self) -> str:
        """The Redis hash that holds the family's counts."""
        return f"kumo:metrics:{self.name}"


API_REQUEST_SECONDS = Family(
    "kumo_api_request_duration_seconds",
    HISTOGRAM,
    "Time the web process took to answer an HTTP request (to the first byte of a streamed body), "
    "by API, route pattern, method and status.",
    ("api", "route", "method", "status"),
    LATENCY_BUCKETS,
    counted_as="kumo_api_requests",
    counted_help="HTTP requests answered, by API, route pattern, method and status.",
)

SCHEDULER_DECISIONS = Family(
    "kumo_scheduler_decision_duration_seconds",
    HISTOGRAM,
    "Time one scheduling decision took (filters, weighers and claims), by outcome: placed, "
    "no_valid_host, waiting (the hosts that would fit are silent) or skipped (nothing to place).",
    ("outcome",),
    LATENCY_BUCKETS,
    counted_as="kumo_scheduler_decisions",
    counted_help="Scheduling decisions, by outcome (placed, no_valid_host, waiting, skipped).",
)

NO_VALID_HOST = Family(
    "kumo_scheduler_no_valid_host",
    COUNTER,
    "Requests that found no valid host, by the filter that removed the last hosts left "
    "(no_hosts when none were registered, claim_race when every host that passed was claimed by "
    "other requests first).",
    ("filter",),
)

HOSTS_REMOVED = Family(
    "kumo_scheduler_hosts_removed",
    COUNTER,
    "Hosts each scheduler filter removed in the decisions that found no valid host or waited "
    "(a placement that succeeds may read only a shortlist of hosts, so it is not counted).",
    ("filter",),
)

BOOTS = Family(
    "kumo_boots",
    COUNTER,
    "Builds of new servers that ended, by outcome: active (running on its host), no_valid_host, "
    "spawn_failed (failed on every host it was tried on) or timed_out (KUMO_BUILD_TIMEOUT). "
    "Unshelving is not a boot.",
    ("outcome",),
)

CLAIMS = Family(
    "kumo_claims",
    COUNTER,
    "Attempts to claim room on a node, by kind (instance: a placement; move: a migration's or "
    "evacuation's destination; resize: a resize on the same node).",
    ("kind",),
)

CLAIM_CONFLICTS = Family(
    "kumo_claim_conflicts",
    COUNTER,
    "Claims refused by their conditional writes, by kind and reason (no_room, group_policy, "
    "instance_changed, already_claimed, no_claim).",
    ("kind", "reason"),
)

TASK_SECONDS = Family(
    "kumo_task_duration_seconds",
    HISTOGRAM,
    "Run time of a Celery task in a control-plane worker, by queue, task and outcome "
    "(success, failure, retry).",
    ("queue", "task", "outcome"),
    LATENCY_BUCKETS,
)

TASK_WAIT_SECONDS = Family(
    "kumo_task_queue_wait_seconds",
    HISTOGRAM,
    "Time a task waited between its publication by a control-plane process and its start in a "
    "control-plane worker, by queue (wall clocks of two machines: keep them in sync).",
    ("queue",),
    LATENCY_BUCKETS,
)

RECORDED = (
    API_REQUEST_SECONDS,
    SCHEDULER_DECISIONS,
    NO_VALID_HOST,
    HOSTS_REMOVED,
    BOOTS,
    CLAIMS,
    CLAIM_CONFLICTS,
    TASK_SECONDS,
    TASK_WAIT_SECONDS,
)
