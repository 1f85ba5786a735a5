"""`python -m cloud.worker` (the Procfile's scheduler and conductor) is `celery -A cloud worker`
without Celery's interactive shells (click_repl, prompt_toolkit: ~10 MiB a worker): it serves the
project's tasks, a conductor leads beat (cloud/conductor/beat.py), what it loaded before it was
ready is frozen out of the garbage collector's reach (cloud/celery.py), and SIGTERM stops it
with 0."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.stack import ROOT

SCRIPT = textwrap.dedent("""
    import gc, os, signal, sys, threading, time
    from celery import signals

    def check(app):
        from cloud.conductor import beat
        deadline = time.monotonic() + 20
        while not (beat._leader and beat._leader.leading.is_set()) and time.monotonic() < deadline:
            time.sleep(0.1)
        shells = sorted(m for m in ("click_repl", "prompt_toolkit") if m in sys.modules)
        leads = bool(beat._leader and beat._leader.leading.is_set())
        # What the worker loaded before it was ready is out of the collector's reach.
        frozen = gc.get_freeze_count() > 10_000
        sys.__stdout__.write(f"TASKS {'conductor.reconcile' in app.tasks} "
                             f"LEADS {leads} SHELLS {shells} FROZEN {frozen}\\n")
        sys.__stdout__.flush()
        os.kill(os.getpid(), signal.SIGTERM)

    @signals.worker_ready.connect
    def ready(sender=None, **_):
        # Apart: the conductor's own worker_ready receiver (beat's leader) runs after this one.
        threading.Thread(target=check, args=(sender.app,), daemon=True).start()

    sys.argv = ["cloud.worker", "-Q", "conductor", "-n", "conductor@probe", "--pool", "threads",
                "-c", "2", "-l", "warning", "--without-gossip", "--without-mingle"]
    from cloud.worker import main
    main()
""")


def test_the_conductor_worker_serves_leads_beat_and_loads_no_shells(tmp_path: Path) -> None:
    env = {**os.environ, "CELERY_BROKER_URL": "memory://", "KUMO_VAR_DIR": str(tmp_path),
           "DATABASE_URL": f"sqlite:///{tmp_path / 'kumo.sqlite3'}"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=90, check=False)
    assert "TASKS True LEADS True SHELLS [] FROZEN True" in done.stdout, (
        done.stdout + done.stderr[-3000:])
    assert done.returncode == 0, done.stderr[-3000:]
