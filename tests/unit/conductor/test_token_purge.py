"""Expired tokens are purged by beat (cloud/beat.py → the conductor's purge task); valid ones stay."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from cloud.beat import TASK_PURGE_EXPIRED_TOKENS
from cloud.conductor import tasks
from cloud.identity import tokens
from cloud.identity.models import Token
from compute_agent import messages as msg


def test_beat_asks_the_conductor_to_purge_expired_tokens():
    entries = [e for e in settings.CELERY_BEAT_SCHEDULE.values()
               if e["task"] == TASK_PURGE_EXPIRED_TOKENS]
    assert [e["options"]["queue"] for e in entries] == [msg.CONDUCTOR_QUEUE]


@pytest.mark.django_db
def test_the_purge_removes_expired_tokens_and_keeps_valid_ones(member):
    expired = tokens.issue(member.user, member.project, ["password"])
    Token.objects.filter(token_hash=tokens._hash(expired.token)).update(
        expires_at=timezone.now() - timedelta(seconds=1))
    tasks.purge_expired_tokens()
    assert tokens.lookup(expired.token) is None
    assert not Token.objects.filter(token_hash=tokens._hash(expired.token)).exists()
    assert tokens.validate(member.token) is not None
