"""Kumo's control plane: one Django project, one app per domain.

The Celery app (cloud.celery) is imported by what uses it (cloud.rpc and the outbox, which send
every message; `-A cloud` and `python -m cloud.worker`), not here as Celery's Django recipe has it:
gunicorn's master imports this package for its worker class (cloud.web_worker) and carried Celery,
Redis and the metrics (~17 MiB) for nothing. No task is sent through a shared_task's `.delay()`,
the one use that needed the app imported first.
"""
