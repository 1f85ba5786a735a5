"""The control plane's Celery app: the scheduler and conductor workers run this app (and beat, on
the conductor: cloud/conductor/beat.py)."""

import os

from celery import Celery, signals

from cloud import tracing
from cloud.metrics import task_timing

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cloud.settings")
# Celery's Django fixup runs Django's system checks in every worker, and those import the whole URL
# configuration (every API view, the dashboard, the consoles): ~23 MiB per worker that never serves
# HTTP. `make run` and the tests run `manage.py migrate`, which runs the same checks once.
os.environ.setdefault("CELERY_SKIP_CHECKS", "1")

app = Celery("cloud")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Beat's schedule runs inside a conductor worker (one at a time, under a lock), not in a process of
# its own; the module wires itself to the worker's start and stop.
app.autodiscover_tasks(lambda: ["cloud.conductor"], related_name="beat")
# Task latency per queue for /metrics: published-at stamps, run times, one batch per task.
task_timing.connect()


def _service_of(nodename: str) -> str:
    """kumo-scheduler for the worker scheduler1@host: the role, not the copy."""
    return "kumo-" + (nodename.split("@", 1)[0].rstrip("0123456789") or "worker")


@signals.celeryd_init.connect
def _trace_worker(sender: str = "", **_: object) -> None:
    if tracing.setup(_service_of(str(sender))):
        tracing.install_celery_hooks()


@signals.beat_init.connect
def _trace_beat(**_: object) -> None:
    if tracing.setup("kumo-beat"):
        tracing.install_celery_hooks()
