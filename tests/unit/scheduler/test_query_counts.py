"""Query-count guards on the scheduler's decision: what one placement costs in SQL must not grow with
the number of hosts, nor with features the request does not use. A regression fails here instead
of showing up, later, as a slower benchmark (bench/scheduler_bench.py)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from cloud.compute import states
from cloud.compute.models import Aggregate, AggregateHost
from cloud.identity import transfer_tokens
from cloud.identity.models import Role, RoleAssignment
from cloud.images.models import Image
from cloud.outbox import relay
from cloud.scheduler.manager import schedule_instance
from tests.factories import make_instance, make_node, owner

pytestmark = pytest.mark.django_db

# Read the instance with its group membership and its image; read the shortlist; claim; record
# the schedule event (one INSERT that finds the action); ask whether it has ports or volumes for
# the spawn message (it has neither here, or each would be one more query); write the message to
# the outbox. The claim
# is one statement on PostgreSQL (take the node's row lock unless another claim holds it, UPDATE
# the node, INSERT the allocation, UPDATE the instance) and three elsewhere (no row locks: UPDATE,
# INSERT, UPDATE). The outbox row's removal, once handed to the broker, is left to the process's
# thread, one DELETE for many messages (cloud/outbox/relay.py). Savepoints are not counted: a test
# runs inside a transaction of its own, which turns the scheduler's transaction into one more.
QUERIES_PER_DECISION = 6 if connection.vendor == "postgresql" else 8


@pytest.fixture(autouse=True)
def _published_rows_deleted_in_batches(settings):
    settings.KUMO_OUTBOX_FORGET_EVERY = 3600  # the thread does not get to run during the test
    yield
    relay.forget_published()


def _hosts(count: int) -> None:
    for i in range(count):
        make_node(f"compute-{i:03d}", memory_mb=4096 + i)
    # A zone the requests do not ask for: nothing about zones should be read for them.
    edge = Aggregate.objects.create(name="edge", availability_zone="edge")
    AggregateHost.objects.create(aggregate=edge, host="compute-000")


def _decide(**fields) -> list[str]:
    instance = make_instance(**fields)
    with CaptureQueriesContext(connection) as queries:
        schedule_instance(str(instance.uuid), "req-1")
    instance.refresh_from_db()
    assert instance.task_state == states.SPAWNING
    return [q["sql"] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]


@pytest.mark.parametrize("hosts", [3, 60])
def test_one_decision_costs_the_same_few_queries_however_many_hosts(sent, hosts):
    _hosts(hosts)

    sql = _decide()

    assert len(sql) == QUERIES_PER_DECISION, "\n".join(sql)


def test_a_decision_reads_only_a_shortlist_of_hosts_not_every_host(sent):
    _hosts(60)

    sql = _decide()

    # (The chosen node's row lock reads that one row by its id.)
    host_reads = [s for s in sql if s.startswith("SELECT") and "compute_computenode" in s
                  and '"compute_computenode"."id" = ' not in s]
    assert len(host_reads) == 1
    assert "LIMIT" in host_reads[0]


def test_a_server_in_no_group_and_no_zone_asks_nothing_about_groups_or_zones(sent):
    _hosts(3)

    sql = _decide()

    # Its membership comes with the instance's own row (a join), not from a query of its own.
    assert not [s for s in sql if 'FROM "compute_servergroup' in s]
    assert not [s for s in sql if "compute_aggregate" in s and "compute_computenode" not in s]
    assert not [s for s in sql if "availability_zone =" in s or "availability_zone\" =" in s]


def test_a_zone_asked_for_is_filtered_in_the_shortlist_query_itself(sent):
    _hosts(3)

    sql = _decide(availability_zone="edge")

    assert len(sql) == QUERIES_PER_DECISION
    shortlist = next(s for s in sql if s.startswith("SELECT") and "compute_computenode" in s)
    assert "availability_zone = 'edge'" in shortlist


def _image_of_a_member() -> Image:
    project, user = owner()
    RoleAssignment.objects.create(user=user, project=project,
                                  role=Role.objects.get_or_create(name="member")[0])
    transfer_tokens.forget()
    return Image.objects.create(name="tiny", status="active", disk_format="qcow2", size=4096,
                                checksum="a" * 32, properties={"hw_architecture": "x86_64"})


def test_a_boot_from_an_image_costs_no_more_once_its_users_download_token_is_kept(sent):
    # The image's properties (for the filters) and its download figures (for the spawn request)
    # come with the instance's row; the download token is the one issued for the same user and
    # project's last boot while no identity row changed since (cloud/identity/transfer_tokens.py).
    _hosts(3)
    image = _image_of_a_member()
    first = _decide(image_ref=str(image.id))

    sql = _decide(image_ref=str(image.id))

    assert len(sql) == QUERIES_PER_DECISION, "\n".join(sql)
    assert [s for s in first if "identity_token" in s]  # the first boot's token was issued
    assert not [s for s in sql if '"identity_' in s or 'FROM "images_image"' in s]
    spawned = [m for m in sent if m.name.endswith("spawn")]
    assert len(spawned) == 2 and spawned[0].args[0]["image"]["token"]
    assert spawned[1].args[0]["image"]["token"] == spawned[0].args[0]["image"]["token"]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="batches are PostgreSQL's")
def test_boots_waiting_alike_are_placed_together_for_the_queries_of_one(sent):
    # The task's own instance is read; then one statement locks it and takes the others (with
    # their request ids, ports and volumes), and the shortlist, the claims, the events and the
    # spawn messages are one statement each, for all of them (cloud/scheduler/batch.py).
    _hosts(60)
    others = [make_instance(f"vm-{i}") for i in range(7)]

    sql = _decide()

    assert len(sql) == QUERIES_PER_DECISION, "\n".join(sql)
    for other in others:
        other.refresh_from_db()
        assert other.task_state == states.SPAWNING


@pytest.mark.skipif(connection.vendor != "postgresql", reason="batches are PostgreSQL's")
def test_boots_alike_from_an_image_share_the_image_the_leader_was_read_with(sent):
    _hosts(60)
    image = _image_of_a_member()
    _decide(image_ref=str(image.id))  # its user's download token is kept from now on
    others = [make_instance(f"vm-{i}", image_ref=str(image.id)) for i in range(7)]

    sql = _decide(image_ref=str(image.id))

    assert len(sql) == QUERIES_PER_DECISION, "\n".join(sql)
    assert not [s for s in sql if '"identity_' in s or 'FROM "images_image"' in s]
    spawned = [m.args[0] for m in sent if m.name.endswith("spawn")]
    assert len(spawned) == 9
    assert {(r["image"]["id"], r["image"]["checksum"], r["image"]["size"]) for r in spawned} == {
        (str(image.id), "a" * 32, 4096)}
    for other in others:
        other.refresh_from_db()
        assert other.task_state == states.SPAWNING
