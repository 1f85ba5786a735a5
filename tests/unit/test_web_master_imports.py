"""Gunicorn's master loads the web worker class (cloud.web_worker) and nothing of the application:
not Django, Celery or Redis, which cost it ~17 MiB it never used (cloud/__init__.py)."""

from __future__ import annotations

import subprocess
import sys

from tests.stack import ROOT


def test_loading_the_web_worker_class_imports_no_django_celery_or_redis() -> None:
    script = ("import sys; from gunicorn.util import load_class; "
              "load_class('cloud.web_worker.Worker'); "
              "print(sorted(m for m in ('django', 'celery', 'redis') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]"
