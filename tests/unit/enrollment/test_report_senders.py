"""The conductor applies a host's report only when it came from that host: signed with the host's
secret (any broker) or published by its RabbitMQ user (the broker checks user_id). Hosts without a
credential of their own keep working unless KUMO_REQUIRE_HOST_CREDENTIALS is on."""

from __future__ import annotations

import pytest

from cloud.compute.models import ComputeNode
from cloud.conductor import tasks
from cloud.enrollment import host_credentials, join_tokens
from compute_agent import messages as msg
from compute_agent.reporter import HostIdentity

pytestmark = pytest.mark.django_db


def _report(host: str) -> dict:
    return msg.HostReport(
        host=host, hypervisor_type="QEMU", hypervisor_version=8002000,
        hypervisor_hostname=f"{host}.local", host_ip="10.0.0.11", vcpus=8, memory_mb=16384,
        local_gb=200,
    ).to_dict()


def _joined(host: str) -> HostIdentity:
    joined = host_credentials.join(join_tokens.issue(host).token)
    return HostIdentity(host=joined.host, secret=joined.host_secret)


def _run(task, data: dict, headers: dict | None, properties: dict | None) -> None:
    """Run a conductor task as a worker does, its request made of the message's headers and
    properties (the real thing over a real broker: tests/integration/test_host_credentials.py)."""
    task.push_request(args=[data], headers=headers, properties=properties or {},
                      called_directly=False)
    try:
        task.run(data)
    finally:
        task.pop_request()


def _deliver(data: dict, headers: dict | None = None, properties: dict | None = None) -> bool:
    """Whether the conductor's host_report task, given this message, wrote the host's node row."""
    _run(tasks.host_report, data, headers, properties)
    return ComputeNode.objects.filter(host=data["host"]).exists()


def _signed(identity: HostIdentity, data: dict, task: str = msg.TASK_HOST_REPORT) -> dict:
    return identity.publish_options(task, data)["headers"]


def test_a_host_without_credential_reports_as_before():
    assert _deliver(_report("compute-1"))


def test_a_report_signed_by_its_host_is_applied(fake_broker):
    a = _joined("compute-a")
    data = _report("compute-a")
    assert _deliver(data, _signed(a, data))


def test_a_report_about_another_host_is_refused(fake_broker):
    a = _joined("compute-a")
    _joined("compute-b")
    data = _report("compute-b")
    assert not _deliver(data, _signed(a, data))


def test_a_report_about_a_host_without_credential_signed_by_another_is_refused(fake_broker):
    a = _joined("compute-a")
    data = _report("compute-1")
    assert not _deliver(data, _signed(a, data))


def test_a_forged_signature_is_refused(fake_broker):
    _joined("compute-b")
    data = _report("compute-b")
    forged = HostIdentity(host="compute-b", secret="guessed")
    assert not _deliver(data, _signed(forged, data))


def test_a_signed_report_changed_on_the_way_is_refused(fake_broker):
    b = _joined("compute-b")
    data = _report("compute-b")
    headers = _signed(b, data)
    data["vcpus"] = 4096
    assert not _deliver(data, headers)


def test_an_unsigned_report_for_a_host_with_a_credential_is_refused(fake_broker):
    _joined("compute-b")
    assert not _deliver(_report("compute-b"))


def test_unsigned_reports_are_refused_when_credentials_are_required(settings):
    settings.KUMO_REQUIRE_HOST_CREDENTIALS = True
    assert not _deliver(_report("compute-1"))


def test_a_revoked_hosts_signature_no_longer_counts(fake_broker):
    b = _joined("compute-b")
    host_credentials.revoke("compute-b")
    data = _report("compute-b")
    assert not _deliver(data, _signed(b, data))


def test_on_rabbitmq_the_publishing_user_names_the_sender(fake_broker, settings):
    settings.CELERY_BROKER_URL = "amqp://cp:cp@127.0.0.1:5672/kumo"
    _joined("compute-a")
    _joined("compute-b")
    # RabbitMQ sets nothing else: user_id is checked against the connection's user by the broker
    by_a = {"user_id": "kumo-host-compute-a"}
    assert not _deliver(_report("compute-b"), properties=by_a)
    assert _deliver(_report("compute-a"), properties=by_a)


def test_the_instance_event_task_refuses_another_hosts_event_too(fake_broker, caplog):
    a = _joined("compute-a")
    _joined("compute-b")
    event = msg.InstanceEvent(request_id="req-1", instance_uuid="u-1", host="compute-b",
                              event=msg.EVENT_STOPPED).to_dict()
    _run(tasks.instance_event, event, _signed(a, event, msg.TASK_INSTANCE_EVENT), None)
    assert ("refused conductor.instance_event for host 'compute-b': sent with the credential of "
            "host 'compute-a'") in caplog.text


@pytest.mark.usefixtures("guest_stats_redis")
def test_guest_statistics_are_kept_only_from_their_own_host(fake_broker, member):
    import time

    from cloud.compute import guest_stats
    from tests.factories import make_server

    a, b = _joined("compute-a"), _joined("compute-b")
    server = make_server(member, host="compute-b")
    data = msg.GuestStatsReport(host="compute-b", collected_at=time.time(), interval=10.0,
                                guests=[msg.GuestStats(uuid=str(server.uuid),
                                                       power_state="running")]).to_dict()
    _run(tasks.guest_stats, data, _signed(a, data, msg.TASK_GUEST_STATS), None)
    assert guest_stats.history(str(server.uuid)) == []  # compute-a speaking for compute-b
    _run(tasks.guest_stats, data, _signed(b, data, msg.TASK_GUEST_STATS), None)
    assert [s.host for s in guest_stats.history(str(server.uuid))] == ["compute-b"]
