"""A volume host's reports and events reach the volumes only from that host: the conductor's tasks
check the sender as they do for compute hosts' reports (signed with the host's own secret)."""

from __future__ import annotations

import pytest

from cloud.conductor import tasks
from cloud.enrollment import host_credentials, join_tokens
from cloud.enrollment.broker_users import FakeBrokerUsers
from cloud.volumes import statuses, volumes
from cloud.volumes.models import VolumeHost
from compute_agent import messages as msg
from compute_agent.reporter import HostIdentity

from .conftest import HOST


@pytest.fixture(autouse=True)
def fake_broker(settings):
    settings.KUMO_BROKER_CREDENTIALS = "fake"
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6379/0"
    settings.KUMO_HOST_BROKER_URL = ""
    FakeBrokerUsers.reset()
    yield
    FakeBrokerUsers.reset()


def _joined(host: str) -> HostIdentity:
    joined = host_credentials.join(join_tokens.issue(host).token)
    return HostIdentity(host=joined.host, secret=joined.host_secret)


def _run(task, data: dict, sender: HostIdentity | None, name: str) -> None:
    headers = sender.publish_options(name, data)["headers"] if sender else None
    task.push_request(args=[data], headers=headers, properties={}, called_directly=False)
    try:
        task.run(data)
    finally:
        task.pop_request()


def _report(host: str) -> dict:
    return msg.VolumeHostReport(host=host, backend="nbd", total_gb=50, free_gb=40).to_dict()


def test_a_volume_host_report_is_applied_only_from_its_own_host(db):
    own, other = _joined(HOST), _joined("vol-2")
    _run(tasks.volume_host_report, _report(HOST), other, msg.TASK_VOLUME_HOST_REPORT)
    _run(tasks.volume_host_report, _report(HOST), None, msg.TASK_VOLUME_HOST_REPORT)
    assert not VolumeHost.objects.filter(name=HOST).exists()
    _run(tasks.volume_host_report, _report(HOST), own, msg.TASK_VOLUME_HOST_REPORT)
    assert VolumeHost.objects.get(name=HOST).free_gb == 40


def test_a_volume_event_signed_by_another_host_changes_nothing(people):
    own, other = _joined(HOST), _joined("vol-2")
    _run(tasks.volume_host_report, _report(HOST), own, msg.TASK_VOLUME_HOST_REPORT)
    volume = volumes.create_volume(people["member"][1], {"size": 1})
    event = msg.VolumeEvent(request_id="req-1", volume_id=str(volume.pk), host=HOST,
                            event=msg.EVENT_VOLUME_CREATED, size_gb=1).to_dict()
    _run(tasks.volume_event, event, other, msg.TASK_VOLUME_EVENT)
    volume.refresh_from_db()
    assert volume.status == statuses.CREATING
    _run(tasks.volume_event, event, own, msg.TASK_VOLUME_EVENT)
    volume.refresh_from_db()
    assert volume.status == statuses.AVAILABLE
