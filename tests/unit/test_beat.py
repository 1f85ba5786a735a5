"""Every periodic task beat sends (cloud/beat.py) is a task some worker of its queue serves."""

from __future__ import annotations

from django.conf import settings

from cloud.beat import TASK_RECOVER_UPLOADS
from cloud.celery import app
from compute_agent import messages as msg


def test_every_beat_entry_names_a_registered_task_on_its_queue():
    app.loader.import_default_modules()
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        assert entry["task"] in app.tasks, f"{name}: nothing serves {entry['task']}"
        assert entry["options"]["queue"] == entry["task"].split(".")[0], name


def test_abandoned_uploads_are_recovered_by_the_conductor_every_minute():
    entries = [e for e in settings.CELERY_BEAT_SCHEDULE.values()
               if e["task"] == TASK_RECOVER_UPLOADS]
    assert [(e["options"]["queue"], e["schedule"]) for e in entries] == [(msg.CONDUCTOR_QUEUE, 60.0)]
