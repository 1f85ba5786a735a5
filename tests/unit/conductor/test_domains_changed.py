"""After an instance task a host reports only the domains it touched (DomainsChanged): the conductor
applies console ports, power sync, guest recovery and the orphan check to those alone, and reads
nothing into the domains it leaves out (the heartbeat's whole HostReport does that)."""

from __future__ import annotations

import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from cloud.compute import states
from cloud.compute.models import ComputeNode, Instance
from cloud.conductor import tasks
from compute_agent import messages as msg
from tests.factories import make_instance, make_node

from .test_guest_recovery import HOST, reboots, refreshed, running, settle

pytestmark = pytest.mark.django_db


@pytest.fixture
def host(db):
    return make_node(HOST)


def changed(*domains: tuple[Instance, str, int]) -> dict:
    """The host's DomainsChanged, as the conductor's task receives it."""
    return msg.DomainsChanged(host=HOST, boot_time=time.time() - 3600, domains=[
        msg.DomainState(uuid=str(i.uuid), power_state=p, vnc_port=port) for i, p, port in domains
    ]).to_dict()


def test_the_domains_a_task_touched_are_applied_and_no_other_instance_is_read_as_gone(
        host, settings, sent):
    settings.KUMO_GUEST_RESTART_BUDGET = 0  # a domain read as gone would put its server in ERROR
    others = [running(host), running(host)]
    Instance.objects.filter(pk__in=[i.pk for i in others]).update(console_port=5901)
    for other in others:
        settle(other)
    new = running(host)
    domains_before = ComputeNode.objects.get(host=HOST).domains

    tasks.domains_changed(changed((new, msg.POWER_RUNNING, 5907)))

    assert refreshed(new).console_port == 5907
    for other in others:
        other = refreshed(other)
        assert (other.status, other.power_state, other.console_port) == (
            "ACTIVE", msg.POWER_RUNNING, 5901)
        assert not other.faults.exists()
    assert sent == []
    # The node keeps the last whole report's domains: what the reconciler compares against.
    assert ComputeNode.objects.get(host=HOST).domains == domains_before


def test_a_listed_guest_that_crashed_is_restarted_and_one_gone_loses_its_port(host, settings, sent):
    settings.KUMO_GUEST_RESTART_BUDGET = 3
    crashed, gone = running(host), running(host)
    Instance.objects.filter(pk=gone.pk).update(console_port=5902)
    settle(gone)

    tasks.domains_changed(changed((crashed, msg.POWER_CRASHED, -1), (gone, msg.POWER_NOSTATE, -1)))

    assert refreshed(crashed).task_state == states.REBOOTING_HARD
    assert len(reboots(sent, crashed)) == 1
    gone = refreshed(gone)
    assert gone.console_port is None
    assert gone.task_state == states.REBOOTING_HARD  # re-created on its host


def test_a_listed_domain_of_a_deleted_instance_is_destroyed_but_not_one_already_gone(host, sent):
    deleted = make_instance("deleted", host=HOST, deleted=True, task_state=None)
    settle(deleted)

    tasks.domains_changed(changed((deleted, msg.POWER_NOSTATE, -1)))
    assert sent == []
    tasks.domains_changed(changed((deleted, msg.POWER_RUNNING, -1)))
    assert [(s.name, s.payload["instance_uuid"]) for s in sent] == [
        (msg.TASK_DESTROY, str(deleted.uuid))]


def test_its_cost_is_the_same_with_5_or_60_guests_on_the_host(host, sent):
    """One follows every boot and every delete: its cost must not grow with the host's guests."""
    counts = {}
    for size in (5, 60):
        Instance.objects.all().delete()
        guests = [running(host) for _ in range(size)]
        with CaptureQueriesContext(connection) as queries:
            tasks.domains_changed(changed((guests[0], msg.POWER_RUNNING, 5900)))
        counts[size] = len(queries.captured_queries)
    assert counts[5] == counts[60], counts
    assert refreshed(guests[0]).console_port == 5900
