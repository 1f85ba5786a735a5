"""The control plane's Celery app: the scheduler and conductor workers run this app (and beat, on
the conductor: cloud/conductor/beat.py)."""

import gc
import os
from typing import Any

# Before Celery and kombu: without the packages they load only because installed (its docstring).
from cloud import optional_imports

# isort: split
from celery import Celery, signals
from django.conf import settings
from django.db import close_old_connections

from cloud import tracing
from cloud.metrics import task_timing
from compute_agent import redis_transport

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cloud.settings")
# Celery's Django fixup runs Django's system checks in every worker, and those import the whole URL
# configuration (every API view, the dashboard, the consoles): ~23 MiB per worker that never serves
# HTTP. `make run` and the tests run `manage.py migrate`, which runs the same checks once.
os.environ.setdefault("CELERY_SKIP_CHECKS", "1")
# Every process that sends on the channel layer (the web, the conductor) imports this module before
# it first does: the layer's serializers without cryptography when it does not encrypt.
optional_imports.import_channel_layer_serializers(settings.CHANNEL_LAYERS)

app = Celery("cloud")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Celery's Django fixup closes every database connection before and after each task (Celery 5.7
# closes them outright, whatever CONN_MAX_AGE says): a new PostgreSQL session per task, whose
# connect cost the conductor more CPU than most of its tasks' work (bench/README.md). With a reuse
# count the fixup closes them only every that many tasks, which is never in practice; instead the
# worker keeps them as Django's own request cycle does (_reuse_connections below).
app.conf.CELERY_DB_REUSE_MAX = 2**31
# On a redis:// broker, kombu's Redis transport with one client per channel instead of a new one
# for every publish, delivery and acknowledgement (the module says why).
if _transport := redis_transport.transport_for(str(app.conf.broker_url or "")):
    app.conf.broker_transport = _transport
app.autodiscover_tasks()
# Beat's schedule runs inside a conductor worker (one at a time, under a lock), not in a process of
# its own; the module wires itself to the worker's start and stop.
app.autodiscover_tasks(lambda: ["cloud.conductor"], related_name="beat")
# Task latency per queue for /metrics: published-at stamps, run times, one batch per task.
task_timing.connect()


def _service_of(nodename: str) -> str:
    """kumo-scheduler for the worker scheduler1@host: the role, not the copy."""
    return "kumo-" + (nodename.split("@", 1)[0].rstrip("0123456789") or "worker")


@signals.task_prerun.connect
@signals.task_postrun.connect
def _reuse_connections(task: Any = None, **_: object) -> None:
    """Before and after each task, as Django does at each request's start and end: a connection is
    closed when it is broken (an error left it unusable), past CONN_MAX_AGE, or left outside
    autocommit; otherwise the thread's next task uses it again. Not for a task run eagerly, inside
    its caller's transaction (as the fixup leaves those alone too)."""
    if task is not None and getattr(task.request, "is_eager", False):
        return
    close_old_connections()


@signals.celeryd_init.connect
def _trace_worker(sender: str = "", **_: object) -> None:
    if tracing.setup(_service_of(str(sender))):
        tracing.install_celery_hooks()


@signals.beat_init.connect
def _trace_beat(**_: object) -> None:
    if tracing.setup("kumo-beat"):
        tracing.install_celery_hooks()


def freeze_startup_heap() -> int:
    """Move every object alive now out of the collector's reach (gc.freeze); how many. What a
    worker has loaded by the time it is ready (Django, Celery, the app's modules and their
    caches: about 120,000 objects) lives as long as the process, yet each full collection walked
    it all: 30-70 ms with every thread stopped, which made the slowest batches of the scheduler
    (its p99 at 1,000 hosts was 59-74 ms in runs with such a collection, 19-31 ms without:
    bench/README.md, "Scheduler"). A full collection then walks only what was made since."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


@signals.worker_ready.connect
def _freeze_when_ready(**_: object) -> None:
    freeze_startup_heap()

