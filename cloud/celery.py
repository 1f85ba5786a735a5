"""The control plane's Celery app: the scheduler, conductor and beat processes run this app."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cloud.settings")

app = Celery("cloud")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
