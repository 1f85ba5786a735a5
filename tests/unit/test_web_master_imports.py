"""Gunicorn's master loads the web worker class (cloud.web_worker) and makes each worker's object
with nothing of the application or of uvicorn: not Django, Celery or Redis, which cost it ~17 MiB
it never used (cloud/__init__.py), nor uvicorn and websockets (~7 MiB), which only the forked
worker needs (cloud/web_worker.py). That worker becomes uvicorn's, keeping what the master made."""

from __future__ import annotations

import os
import subprocess
import sys

from gunicorn.config import Config
from gunicorn.glogging import Logger

from tests.stack import ROOT


def test_the_master_imports_no_django_celery_redis_or_uvicorn() -> None:
    # As gunicorn's Arbiter: the class from -k, one object per worker before it forks.
    script = ("import os, sys; from gunicorn.config import Config; "
              "from gunicorn.glogging import Logger; cfg = Config(); "
              "cfg.set('worker_class', 'cloud.web_worker.Worker'); "
              "cfg.worker_class(1, os.getpid(), [], None, 60, cfg, Logger(cfg)); "
              "print(sorted(m for m in ('django', 'celery', 'redis', 'uvicorn', 'websockets') "
              "if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]"


def test_the_forked_worker_becomes_uvicorns_and_keeps_the_masters_heartbeat_file() -> None:
    from cloud.web_uvicorn import KEEP_ALIVE_S
    from cloud.web_uvicorn import Worker as UvicornWorker
    from cloud.web_worker import Worker

    cfg = Config()
    cfg.set("max_requests", 1000)
    cfg.set("max_requests_jitter", 500)
    worker = Worker(3, os.getpid(), ["listener"], None, 60, cfg, Logger(cfg))
    worker.pid = 4242  # as the master sets it after fork
    tmp, limit = worker.tmp, worker.max_requests
    try:
        worker.become_uvicorn_worker()
        assert isinstance(worker, UvicornWorker)
        assert worker.tmp is tmp  # the file the master watches for the timeout
        assert (worker.pid, worker.age, worker.sockets, worker.max_requests) == (
            4242, 3, ["listener"], limit)
        assert worker.config.timeout_keep_alive == KEEP_ALIVE_S
        assert worker.config.ws == "cloud.web_uvicorn:WebSocketProtocol"
        worker.notify()  # the heartbeat still goes to the master's file
    finally:
        tmp.close()
