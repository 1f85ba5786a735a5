"""Optional packages that libraries import merely because they are installed, kept out of Kumo's
processes: each costs resident memory in every process that loads it, for a feature Kumo does not
use (bench/README.md, "Memory").

- redis-py 7 imports OpenTelemetry's metrics SDK (~3 MiB a process: web, conductor, scheduler)
  for its own client metrics, which are off unless an application turns them on; Kumo does not
  (Kumo's traces use the tracing SDK, imported when configured: cloud/tracing.py).
- Django REST framework imports requests (for its test client) and, through its schema
  generator, Django's admindocs, which imports docutils (~7 MiB in the web process together),
  and PyYAML and pygments for its YAML schema renderer and browsable API's highlighting;
  Kumo serves JSON only and writes its OpenAPI document itself (cloud/api/openapi.py).
- channels_redis imports cryptography's Fernet (its Rust bindings, ~7 MiB in the web and the
  conductor, the processes that send on the channel layer) for message encryption the layer does
  only when configured with symmetric_encryption_keys; Kumo's (cloud/settings.py) is not.
- Celery and kombu import PyYAML, msgpack, pygments and psutil for serializers Kumo does not
  accept, terminal colours and a debug command (compute_agent/boundary.py's CELERY_OPTIONAL,
  which the agents share).

Importing this module imports redis and those modules of Celery and kombu. Each library is imported once with the package looking absent, so it takes the branch it takes
when the package is not installed; the package stays importable for anything else afterwards.
A process that has already imported the package (the test run, which uses requests) is left as it
is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from compute_agent.boundary import absent, import_celery_lean

__all__ = ["absent", "import_channel_layer_serializers", "import_rest_framework", "redis"]


def import_rest_framework() -> None:
    """Import DRF's optional-package probes without requests and docutils (the web process,
    before its middleware and views are loaded)."""
    with absent("requests", "docutils", "yaml", "pygments"):
        import django.contrib.admindocs.utils  # noqa: F401
        import rest_framework.compat  # noqa: F401


def import_channel_layer_serializers(layers: Mapping[str, Any]) -> None:
    """Import channels_redis's serializers without cryptography unless a layer of `layers`
    (settings.CHANNEL_LAYERS) encrypts its messages: with symmetric_encryption_keys they are
    imported as they are, and encrypt as configured."""
    if any((layer.get("CONFIG") or {}).get("symmetric_encryption_keys") for layer in layers.values()):
        return
    # The module, not the package: redis-py has imported the package (to read its version).
    with absent("cryptography.fernet"):
        import channels_redis.serializers  # noqa: F401


# redis-py, imported here without its OpenTelemetry metrics: whatever in a process imports redis
# first imports it from here (cloud/settings.py for the web and commands, cloud/metrics/store.py
# for the workers, which import it before the settings), and every later `import redis` gets
# this module.
with absent("opentelemetry.sdk.metrics"):
    import redis  # for `from cloud.optional_imports import redis`
# As early, for the same reason: the web process imports this module before Celery (through the
# settings), the workers before their command line (cloud/worker.py).
import_celery_lean()
