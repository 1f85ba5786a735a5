"""Claims racing on one node from many connections at once (PostgreSQL's row locks, for real)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections
from django.db.models import Sum

from cloud.compute.models import Allocation, ComputeNode
from tests.factories import claim, host_state, make_instance, make_node

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="needs PostgreSQL (set DATABASE_URL=postgres://…): SQLite serialises every writer, "
        "so nothing would race",
    ),
]


def test_eight_concurrent_claims_on_room_for_three_leave_exactly_three_winners():
    node = make_node(vcpus=3, memory_mb=3072, local_gb=30)
    instances = [make_instance(f"vm-{i}", vcpus=1, memory_mb=1024, root_gb=10) for i in range(8)]
    state = host_state(node)
    start = threading.Barrier(len(instances))
    results: list[bool] = []

    def claim_one(instance) -> None:
        try:
            start.wait()
            results.append(claim(instance, state))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=claim_one, args=(i,)) for i in instances]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(results) == [False] * 5 + [True] * 3
    node = ComputeNode.objects.get(pk=node.pk)
    totals = Allocation.objects.filter(node=node).aggregate(
        vcpus=Sum("vcpus"), memory_mb=Sum("memory_mb"), disk_gb=Sum("disk_gb")
    )
    assert (node.vcpus_used, node.memory_mb_used, node.local_gb_used) == (
        totals["vcpus"],
        totals["memory_mb"],
        totals["disk_gb"],
    ) == (3, 3072, 30)
