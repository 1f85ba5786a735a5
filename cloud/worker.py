"""`python -m cloud.worker [celery worker options]`: what `celery -A cloud worker` runs, the same
options (-Q, -n, --pool, -c, -l…), without the rest of Celery's command line.

`celery` builds its whole command line before it runs a worker, and its `amqp` shell imports
click_repl and prompt_toolkit: ~10 MiB of every scheduler and conductor for a command no worker
runs (bench/README.md). Celery's `worker` command alone, on this project's app, starts the same
worker.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

# First: Celery's modules without the packages they would load only because installed.
from cloud import optional_imports  # noqa: F401

# isort: split
from celery.bin.base import CLIContext
from celery.bin.worker import worker

from cloud.celery import app


def main(argv: Sequence[str] | None = None) -> None:
    """Run the worker until it stops; exits as `celery worker` does (usage errors included)."""
    args = list(sys.argv[1:] if argv is None else argv)
    worker.main(args=args, obj=CLIContext(app=app, no_color=None, workdir=None),
                prog_name="python -m cloud.worker")


if __name__ == "__main__":
    main()
