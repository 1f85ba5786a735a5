"""Periodic tasks for `celery -A cloud beat`, wired into settings as CELERY_BEAT_SCHEDULE.

Heartbeats expire after one interval: a beat queued while its worker was down says nothing about
the worker being alive later, and a backlog of them would only inflate report_count.
"""

import os

from compute_agent import messages as msg

HEARTBEAT_SECONDS = 10.0
BUILD_TIMEOUT_SWEEP_SECONDS = 60.0
TOKEN_PURGE_SECONDS = 3600.0
# How often stuck work is re-driven, and the outbox swept for what the broker could not take.
RECONCILE_SECONDS = float(os.environ.get("KUMO_RECONCILE_INTERVAL", "15"))
OUTBOX_RELAY_SECONDS = float(os.environ.get("KUMO_OUTBOX_RELAY_INTERVAL", "5"))

# Periodic work of the control plane alone (no agent takes part), so named here, not in the
# agent contract.
TASK_PURGE_EXPIRED_TOKENS = "conductor.purge_expired_tokens"
TASK_RECONCILE = "conductor.reconcile"
TASK_RELAY_OUTBOX = "conductor.relay_outbox"
TASK_RECOVER_UPLOADS = "conductor.recover_abandoned_uploads"
TASK_WATCH_HOSTS = "conductor.watch_hosts"
# How often silent hosts are looked for and their failures moved on (fencing, recovery).
HOST_WATCH_SECONDS = float(os.environ.get("KUMO_HOST_WATCH_INTERVAL", "5"))
UPLOAD_SWEEP_SECONDS = 60.0

CELERY_BEAT_SCHEDULE = {
    "scheduler-report-alive": {
        "task": msg.TASK_SCHEDULER_ALIVE,
        "schedule": HEARTBEAT_SECONDS,
        "options": {"queue": msg.SCHEDULER_QUEUE, "expires": HEARTBEAT_SECONDS},
    },
    "conductor-report-alive": {
        "task": msg.TASK_CONDUCTOR_ALIVE,
        "schedule": HEARTBEAT_SECONDS,
        "options": {"queue": msg.CONDUCTOR_QUEUE, "expires": HEARTBEAT_SECONDS},
    },
    "conductor-check-build-timeouts": {
        "task": msg.TASK_BUILD_TIMEOUTS,
        "schedule": BUILD_TIMEOUT_SWEEP_SECONDS,
        "options": {"queue": msg.CONDUCTOR_QUEUE, "expires": BUILD_TIMEOUT_SWEEP_SECONDS},
    },
    # Expired tokens are refused on sight; this only keeps the table from growing forever.
    "conductor-purge-expired-tokens": {
        "task": TASK_PURGE_EXPIRED_TOKENS,
        "schedule": TOKEN_PURGE_SECONDS,
        "options": {"queue": msg.CONDUCTOR_QUEUE, "expires": TOKEN_PURGE_SECONDS},
    },
    "conductor-reconcile": {
        "task": TASK_RECONCILE,
        "schedule": RECONCILE_SECONDS,
        "options": {"queue": msg.CONDUCTOR_QUEUE, "expires": RECONCILE_SECONDS},
    },
    "conductor-relay-outbox": {
        "task": TASK_RELAY_OUTBOX,
        "schedule": OUTBOX_RELAY_SECONDS,
        "options": {"queue": msg.CONDUCTOR_QUEUE, "expires": OUTBOX_RELAY_SECONDS},
    },
    "conductor-watch-hosts": {
        "task": TASK_WATCH_HOSTS,
        "schedule": HOST_WATCH_SECONDS,
        "options": {"queue": msg.CONDUCTOR_QUEUE, "expires": HOST_WATCH_SECONDS},
    },
    # An upload whose web process died leaves its image in `saving`: put it back to `queued`.
    "conductor-recover-abandoned-uploads": {
        "task": TASK_RECOVER_UPLOADS,
        "schedule": UPLOAD_SWEEP_SECONDS,
        "options": {"queue": msg.CONDUCTOR_QUEUE, "expires": UPLOAD_SWEEP_SECONDS},
    },
}
