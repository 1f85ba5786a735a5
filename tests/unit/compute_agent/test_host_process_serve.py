"""A host process's Celery worker starts, consumes, and stops with exit code 0 on SIGTERM, without
loading Celery's interactive shells: `amqp`'s click_repl and prompt_toolkit cost every host process
~10 MiB of memory (bench/README.md) for a command a host never runs."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.stack import ROOT

SCRIPT = textwrap.dedent("""
    import os, signal, sys
    from compute_agent.host_process import create_app, serve, worker_argv
    from compute_agent.worker import AgentConfig

    config = AgentConfig(host="probe", broker_url="memory://", concurrency=2)
    seen = {}

    def on_ready():
        seen["shells"] = sorted(m for m in ("click_repl", "prompt_toolkit") if m in sys.modules)
        os.kill(os.getpid(), signal.SIGTERM)  # a warm shutdown, as a supervisor stops it

    code = serve(create_app(config), worker_argv(config), "probe", on_ready, lambda: None)
    # Celery's worker sends print() to its logger: the real stdout, for the test to read.
    sys.__stdout__.write(f"READY {seen.get('shells')} EXIT {code}\\n")
""")


def test_host_worker_consumes_and_stops_cleanly_without_the_interactive_shells() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, check=False,
                          text=True, timeout=60)
    assert "READY [] EXIT 0" in done.stdout, done.stdout + done.stderr
