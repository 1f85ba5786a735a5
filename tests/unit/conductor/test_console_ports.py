"""The conductor keeps each instance's VNC port as its host reports it; console tokens are checked
against it (cloud/compute/consoles.py)."""

from __future__ import annotations

import pytest

from cloud.compute.models import Instance
from cloud.conductor.host_reports import apply_host_report
from compute_agent import messages as msg
from tests.factories import make_instance

from .test_host_report import report

pytestmark = pytest.mark.django_db


def test_a_running_domains_vnc_port_is_recorded_on_its_instance():
    instance = make_instance(host="compute-1")
    apply_host_report(report(domains=[
        msg.DomainState(uuid=str(instance.uuid), power_state=msg.POWER_RUNNING, vnc_port=5904)]))
    instance.refresh_from_db()
    assert instance.console_port == 5904


def test_an_instance_whose_domain_reports_no_port_loses_the_old_one():
    instance = make_instance(host="compute-1")
    Instance.objects.filter(pk=instance.pk).update(console_port=5904)
    apply_host_report(report(domains=[
        msg.DomainState(uuid=str(instance.uuid), power_state=msg.POWER_SHUTDOWN)]))
    instance.refresh_from_db()
    assert instance.console_port is None


def test_a_host_cannot_set_the_port_of_an_instance_on_another_host():
    elsewhere = make_instance(host="compute-2")
    apply_host_report(report(host="compute-1", domains=[
        msg.DomainState(uuid=str(elsewhere.uuid), power_state=msg.POWER_RUNNING, vnc_port=5999)]))
    elsewhere.refresh_from_db()
    assert elsewhere.console_port is None


def _report_of(instances: list, port_base: int) -> msg.HostReport:
    return report(domains=[
        msg.DomainState(uuid=str(i.uuid), power_state=msg.POWER_RUNNING, vnc_port=port_base + n)
        for n, i in enumerate(instances)])


def test_a_report_costs_the_same_queries_with_5_or_60_guests_on_the_host():
    """A report follows every boot: its cost must not grow with the guests the host already runs."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    counts = {}
    for size in (5, 60):
        Instance.objects.all().delete()
        instances = [make_instance(host="compute-1") for _ in range(size)]
        apply_host_report(_report_of(instances, 5900))  # every port new: written
        with CaptureQueriesContext(connection) as unchanged:
            apply_host_report(_report_of(instances, 5900))
        counts[size] = len(unchanged.captured_queries)
    assert counts[5] == counts[60], counts
    assert [Instance.objects.get(pk=i.pk).console_port for i in instances[:3]] == [5900, 5901, 5902]
