"""What the conductor's share of a plain boot costs in SQL: its spawned event and the host's
DomainsChanged after it. Query-count guards, so that a regression fails here rather than showing up
as a slower bench/boot_bench.py; and what the cheaper paths must still do (ports marked ACTIVE, the
live update told the project without reading it).

Savepoints are not counted: the test runs in a transaction of its own."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from cloud import events
from cloud.compute import states
from cloud.compute.models import ComputeNode, Instance
from cloud.conductor import tasks
from cloud.enrollment import uncredentialed
from cloud.network.models import Port
from compute_agent import messages as msg
from tests.factories import claim, give_address, host_state, make_instance, make_node

pytestmark = pytest.mark.django_db

HOST = "compute-1"
# Is the host's credential needed (report_senders: asked of the database for a host's first
# message only, then remembered under the shared credential generation); the state move, which
# returns the project and whether anything else is to do; the action's event with the action
# finished (one statement).
SPAWNED = 3
# After that first message: the listed domains that are the host's live instances (console ports,
# power sync and the orphan check all start from them); the new guest's console port.
DOMAINS_CHANGED = 2
# The spawned event carrying the new domain (contract 1.12), the host's credential check
# remembered: the state move, which sets the console port too; the action's event. One message and
# one transaction instead of two of each, and nothing else for the domain to do (see
# instance_events._spawned).
SPAWNED_WITH_DOMAINS = 2
# A heartbeat (HostReport): the service's row written and read back; the host's live instances,
# once for console ports, power sync and the orphan check; the node's address and data plane,
# then the node written.
HEARTBEAT = 5
# Before (2026-12-06): spawned 8 (and the live update's read of the project after the commit: 9),
# DomainsChanged 5, heartbeat 8. Before the credential memo and contract 1.12 (the same day): a
# boot's spawned event and DomainsChanged 3 + 3, each with its own credential query, task and
# transaction; heartbeat 6.


@pytest.fixture(autouse=True)
def _no_host_remembered():
    # Each test starts as a conductor that has not heard from the host yet.
    uncredentialed.clear_local()
    yield
    uncredentialed.clear_local()


@pytest.fixture
def node() -> ComputeNode:
    return make_node(HOST)


def spawning(node: ComputeNode) -> Instance:
    instance = make_instance()
    assert claim(instance, host_state(node))
    return instance


def _sql(call) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        call()
    return [q["sql"] for q in captured.captured_queries if "SAVEPOINT" not in q["sql"]]


def spawned(instance: Instance) -> None:
    tasks.instance_event(msg.InstanceEvent(
        request_id="req-1", instance_uuid=str(instance.uuid), host=HOST,
        event=msg.EVENT_SPAWNED, power_state=msg.POWER_RUNNING).to_dict())


def the_domain(instance: Instance, port: int = 5901, host: str = HOST) -> msg.DomainsChanged:
    return msg.DomainsChanged(host=host, boot_time=time.time() - 3600, domains=[
        msg.DomainState(uuid=str(instance.uuid), power_state=msg.POWER_RUNNING, vnc_port=port),
    ])


def domains_changed(instance: Instance, port: int = 5901) -> None:
    tasks.domains_changed(the_domain(instance, port).to_dict())


def spawned_with_domain(instance: Instance, port: int = 5901, host: str = HOST) -> None:
    """What an agent of contract 1.12 sends after a spawn: one message."""
    tasks.instance_event(msg.InstanceEvent(
        request_id="req-1", instance_uuid=str(instance.uuid), host=HOST,
        event=msg.EVENT_SPAWNED, power_state=msg.POWER_RUNNING,
        domains_changed=the_domain(instance, port, host)).to_dict())


def test_a_plain_boots_spawned_event_costs_a_fixed_few_queries(node, sent):
    instance = spawning(node)
    told: list[dict] = []

    def listener(sender: object, **payload: object) -> None:
        told.append(payload)

    events.INSTANCE_CHANGED.connect(listener)
    try:
        sql = _sql(lambda: spawned(instance))
    finally:
        events.INSTANCE_CHANGED.disconnect(listener)

    instance.refresh_from_db()
    assert (instance.vm_state, instance.task_state) == (states.ACTIVE, None)
    assert len(sql) == SPAWNED, "\n".join(sql)
    # The live update got the project from the state move (the dashboard read it otherwise).
    assert told == [{"signal": events.INSTANCE_CHANGED, "instance_uuid": str(instance.uuid),
                     "project_id": str(instance.project_id)}]


def test_a_spawned_event_marks_the_servers_ports_active(node, sent):
    instance = spawning(node)
    port = give_address(instance)
    Port.objects.filter(pk=port.pk).update(status="DOWN")

    spawned(instance)

    port.refresh_from_db()
    assert port.status == "ACTIVE"


def test_a_plain_boots_domains_changed_costs_a_fixed_few_queries(node, sent):
    instance = spawning(node)
    spawned(instance)

    sql = _sql(lambda: domains_changed(instance))

    instance.refresh_from_db()
    assert instance.console_port == 5901
    assert len(sql) == DOMAINS_CHANGED, "\n".join(sql)
    assert sent == []


@pytest.mark.parametrize("changed_ago, task_state, stopped", [
    (60, None, True),  # settled: the hypervisor's word is taken
    (1, None, False),  # changed within the grace: a report gathered before may come after
    (60, states.REBOOTING, False),  # in a task: the task's end decides
])
def test_the_domains_changed_power_sync_keeps_its_conditions(node, sent, settings, changed_ago,
                                                              task_state, stopped):
    """The power sync of a DomainsChanged now narrows the rows read once for all three steps; the
    same conditions as its own query had must hold."""
    settings.KUMO_POWER_SYNC_GRACE = 20
    instance = spawning(node)
    spawned(instance)
    Instance.objects.filter(pk=instance.pk).update(
        task_state=task_state, updated_at=timezone.now() - timedelta(seconds=changed_ago))

    tasks.domains_changed(msg.DomainsChanged(host=HOST, boot_time=time.time() - 3600, domains=[
        msg.DomainState(uuid=str(instance.uuid), power_state=msg.POWER_SHUTDOWN, vnc_port=5901),
    ]).to_dict())

    instance.refresh_from_db()
    assert (instance.vm_state == states.STOPPED) is stopped
    assert instance.power_state == (msg.POWER_SHUTDOWN if stopped else msg.POWER_RUNNING)


def test_a_heartbeat_costs_a_fixed_few_queries_however_many_guests(node, sent):
    guests = [spawning(node) for _ in range(3)]
    for guest in guests:
        spawned(guest)

    def heartbeat() -> None:
        tasks.host_report(msg.HostReport(
            host=HOST, hypervisor_type="QEMU", hypervisor_version=1, hypervisor_hostname=HOST,
            host_ip="10.0.0.1", vcpus=4, memory_mb=4096, local_gb=40,
            boot_time=time.time() - 3600, domains=[
                msg.DomainState(uuid=str(g.uuid), power_state=msg.POWER_RUNNING, vnc_port=5901 + n)
                for n, g in enumerate(guests)]).to_dict())

    heartbeat()  # the console ports written once
    sql = _sql(heartbeat)

    assert len(sql) == HEARTBEAT, "\n".join(sql)
    assert [Instance.objects.get(pk=g.pk).console_port for g in guests] == [5901, 5902, 5903]


def test_a_spawned_event_with_its_domain_costs_a_fixed_few_queries_in_one_transaction(
        node, sent):
    spawned_with_domain(spawning(node))  # the host's first message: its credential checked
    instance = spawning(node)

    with CaptureQueriesContext(connection) as captured:
        spawned_with_domain(instance)
    sql = [q["sql"] for q in captured.captured_queries if "SAVEPOINT" not in q["sql"]]
    savepoints = [q["sql"] for q in captured.captured_queries if "SAVEPOINT" in q["sql"]]

    instance.refresh_from_db()
    assert (instance.vm_state, instance.task_state, instance.power_state) == (
        states.ACTIVE, None, msg.POWER_RUNNING)
    assert instance.console_port == 5901
    assert instance.actions.get().finish_time is not None
    assert sent == []
    # One transaction for both (a savepoint here, inside the test's own) and none inside it.
    assert len(savepoints) == 2, "\n".join(savepoints)
    assert len(sql) == SPAWNED_WITH_DOMAINS, "\n".join(sql)


def test_an_older_agents_event_then_domains_still_work(node, sent):
    """An agent older than 1.12 sends its spawned event and its DomainsChanged as two messages
    (rolling upgrade): both tasks still take them, with the same outcome as one message."""
    instance = spawning(node)

    spawned(instance)
    domains_changed(instance, port=5902)

    instance.refresh_from_db()
    assert (instance.vm_state, instance.task_state, instance.console_port) == (
        states.ACTIVE, None, 5902)
    assert instance.actions.get().finish_time is not None


def test_the_event_is_applied_even_if_its_domains_fail(node, sent, monkeypatch):
    """The domains are a courtesy (the next heartbeat lists them); a spawned event lost with them
    would leave the server BUILDING until its build timeout."""
    instance = spawning(node)

    def broken(report: object, own: object = None) -> None:
        raise RuntimeError("injected")

    monkeypatch.setattr(tasks.host_reports, "apply_domains_changed", broken)
    # Through the domains' own steps, as any event but a boot's spawned goes.
    monkeypatch.setattr(tasks.instance_events, "_own_console", lambda event: None)
    spawned_with_domain(instance)

    instance.refresh_from_db()
    assert (instance.vm_state, instance.task_state, instance.console_port) == (
        states.ACTIVE, None, None)


def test_domains_of_another_host_sent_with_an_event_are_ignored(node, sent):
    """The event was accepted for its own host; the domains it carries may speak for no other."""
    instance = spawning(node)
    make_node("compute-2")

    spawned_with_domain(instance, host="compute-2")

    instance.refresh_from_db()
    assert (instance.vm_state, instance.console_port) == (states.ACTIVE, None)


def test_a_redelivered_spawned_event_with_its_domain_applies_the_domain_through_its_steps(
        node, sent):
    """Already ACTIVE (a redelivery): the state move does nothing, so the domain goes through the
    DomainsChanged steps, which still record a console port that moved."""
    instance = spawning(node)
    spawned_with_domain(instance, port=5901)

    spawned_with_domain(instance, port=5909)

    instance.refresh_from_db()
    assert (instance.vm_state, instance.console_port) == (states.ACTIVE, 5909)
    assert sent == []


def test_a_spawned_event_carrying_other_domains_too_applies_them_through_their_steps(node, sent):
    instance, other = spawning(node), spawning(node)
    spawned(other)
    event = msg.InstanceEvent(
        request_id="req-1", instance_uuid=str(instance.uuid), host=HOST,
        event=msg.EVENT_SPAWNED, power_state=msg.POWER_RUNNING,
        domains_changed=msg.DomainsChanged(host=HOST, boot_time=time.time() - 3600, domains=[
            msg.DomainState(uuid=str(i.uuid), power_state=msg.POWER_RUNNING, vnc_port=port)
            for i, port in ((instance, 5901), (other, 5902))]))

    tasks.instance_event(event.to_dict())

    assert [Instance.objects.get(pk=i.pk).console_port for i in (instance, other)] == [5901, 5902]
    assert Instance.objects.get(pk=instance.pk).vm_state == states.ACTIVE
