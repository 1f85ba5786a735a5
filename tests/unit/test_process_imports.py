"""What the long-running processes leave out of their resident set (cloud/optional_imports.py,
compute_agent/boundary.py): packages a library imports only because they are installed —
OpenTelemetry's metrics SDK (redis-py), requests and docutils (DRF), PyYAML, msgpack, pygments and
psutil (kombu, Celery, DRF) — and cryptography, imported where a key pair, a credential or an image
upload needs it. Each is a few MiB in every web, conductor, scheduler or agent process
(bench/README.md). The packages stay importable after."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.stack import ROOT

# msgpack stays out of a process until the channel layer, whose messages it encodes, is first used.
LEFT_OUT = ("opentelemetry.sdk.metrics", "requests", "docutils", "cryptography.hazmat.bindings._rust",
            "yaml", "msgpack", "pygments", "psutil")


def _loaded_after(script: str) -> dict:
    probe = (f"import sys, json\n{script}\n"
             f"loaded = [m for m in {LEFT_OUT!r} if m in sys.modules]\n"
             "import requests, docutils.core, opentelemetry.sdk.metrics, cryptography.fernet, yaml\n"
             "import msgpack, pygments, psutil\n"
             "print(json.dumps({'loaded': loaded, 'redis': 'redis' in sys.modules}))")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "cloud.settings"}
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=True, env=env)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_web_application_loads_none_of_them() -> None:
    found = _loaded_after("import cloud.asgi\nfrom django.urls import resolve\n"
                          "resolve('/compute/v2.1/servers')\nimport cloud.urls\n"
                          "from channels.layers import get_channel_layer\nget_channel_layer()")
    assert found == {"loaded": ["msgpack"], "redis": True}


def test_a_worker_loads_none_of_them() -> None:
    # As `python -m cloud.worker` starts: its module, then the app's tasks and the worker's own.
    found = _loaded_after("from cloud.worker import app\nimport django\ndjango.setup()\n"
                          "app.loader.import_default_modules()\n"
                          "import celery.apps.worker, celery.worker.consumer, celery.concurrency.thread\n"
                          "from channels.layers import get_channel_layer\nget_channel_layer()")
    assert found == {"loaded": ["msgpack"], "redis": True}


def test_an_agent_loads_redis_without_the_metrics_sdk() -> None:
    # As compute_agent.worker.run() starts, up to the modules its Celery worker loads.
    found = _loaded_after("from compute_agent import boundary\n"
                          "boundary.forbid_control_plane_imports()\nboundary.import_redis_lean()\n"
                          "boundary.import_celery_lean()\nimport compute_agent.worker\n"
                          "import kombu.transport.redis, celery.bin.worker, celery.apps.worker\n"
                          "import celery.worker.consumer, celery.concurrency.thread")
    assert found == {"loaded": [], "redis": True}


def test_a_channel_layer_that_encrypts_gets_cryptography() -> None:
    found = _loaded_after("from cloud.optional_imports import import_channel_layer_serializers\n"
                          "import_channel_layer_serializers({'default': {'CONFIG': "
                          "{'symmetric_encryption_keys': ['k']}}})\n"
                          "from channels_redis.serializers import Fernet\nassert Fernet")
    assert found == {"loaded": ["cryptography.hazmat.bindings._rust", "msgpack"], "redis": True}
