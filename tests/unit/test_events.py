"""cloud/events.py: a domain event reaches its listeners once the change commits, never before, and
a listener that fails never fails the change."""

from __future__ import annotations

import pytest

from cloud import events


@pytest.fixture
def heard():
    received: list[str] = []

    def listener(sender, instance_uuid, **_):
        received.append(instance_uuid)

    events.INSTANCE_CHANGED.connect(listener, dispatch_uid="test.heard")
    yield received
    events.INSTANCE_CHANGED.disconnect(dispatch_uid="test.heard")


@pytest.mark.django_db
def test_listeners_hear_an_instance_change_only_after_the_commit(heard, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        events.instance_changed("8d3c7a34-0000-4000-8000-000000000001")
    assert heard == []
    for callback in callbacks:
        callback()
    assert heard == ["8d3c7a34-0000-4000-8000-000000000001"]


@pytest.mark.django_db
def test_a_failing_listener_is_logged_and_the_others_still_hear(heard, caplog, django_capture_on_commit_callbacks):
    def broken(sender, **_):
        raise RuntimeError("listener down")

    events.INSTANCE_CHANGED.connect(broken, dispatch_uid="test.broken")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            events.instance_changed("u-1")
    finally:
        events.INSTANCE_CHANGED.disconnect(dispatch_uid="test.broken")
    assert heard == ["u-1"]
    assert "listener down" in caplog.text


@pytest.mark.django_db
def test_the_dashboard_listens_to_instance_changes():
    from cloud.dashboard import live

    results = events.INSTANCE_CHANGED.send(None, instance_uuid="8d3c7a34-0000-4000-8000-000000000002")
    assert live.on_instance_changed in [receiver for receiver, _ in results]
