"""Concurrent writes through the network's service functions on PostgreSQL: ports made at once
through the API path never share an address, tenant networks made at once never share a VNI,
and two first uses of a project's default security group make one group."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import connection, connections

from cloud.identity.context import RequestContext
from cloud.identity.models import Project
from cloud.network import networks, ports
from cloud.network import security_groups as groups
from cloud.network.models import SecurityGroup
from tests.factories import make_network

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql",
                       reason="row locks need PostgreSQL; SQLite serialises writers"),
    pytest.mark.django_db(transaction=True),
]

WORKERS = 6


def _ctx(project: Project) -> RequestContext:
    return RequestContext(user_id="u", user_name="u", project_id=project.id,
                          project_name=project.name, roles=("member", "reader"))


def _at_once(work: Callable[[int], Any]) -> list[Any]:
    start = threading.Barrier(WORKERS)

    def run(n: int) -> Any:
        try:
            start.wait()
            return work(n)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        return list(pool.map(run, range(WORKERS)))  # re-raises any failure here


def test_ports_made_at_once_get_distinct_addresses():
    project = Project.objects.create(name="race")
    network = make_network("race-net", project, "10.7.0.0/24")
    ctx = _ctx(project)
    made = _at_once(lambda n: ports.create_port(ctx, {"network_id": str(network.id)}))
    addresses = [p.fixed_ips[0]["ip_address"] for p in made]
    assert len(set(addresses)) == WORKERS


def test_networks_made_at_once_get_distinct_vnis():
    # One project each, so the quota's project lock does not already serialise them.
    contexts = [_ctx(Project.objects.create(name=f"race-{n}")) for n in range(WORKERS)]
    made = _at_once(lambda n: networks.create_network(contexts[n], {"name": f"n{n}"}))
    assert sorted(n.segmentation_id for n in made) == list(range(1000, 1000 + WORKERS))


def test_first_uses_of_the_default_group_make_one():
    project = Project.objects.create(name="race")
    found = _at_once(lambda n: groups.default_group(project.id).pk)
    assert len(set(found)) == 1
    assert SecurityGroup.objects.filter(project=project).count() == 1
    assert SecurityGroup.objects.get(project=project).rules.count() == 4
