"""Query-count guards on the web process's hot paths: what one boot, one list and one show cost in
SQL, with the token already validated once (its validation is then remembered:
tests/unit/api/test_token_cache.py). A list must not grow with the number of servers (no query per
row). A regression fails here instead of showing up, later, as a slower benchmark
(bench/boot_bench.py).

Savepoints are not counted: a test runs inside a transaction of its own, which turns each of the
request's transactions into a savepoint."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import V, boot, give_address, make_server

VERSION = "2.100"

# Read the flavor and the image, with the caller's access to them (one statement:
# compute/boot_sql.py); lock the project; read the default limits, the project's and the user's own
# limits, and count the project's servers, cores and RAM (one statement, after the lock); write the
# instance and its create action (one statement); write the scheduler's message to the outbox;
# remove the message once handed to the broker. Nothing about key pairs or server groups when none
# is asked for, and no second read of the project for the dashboard's live update (the boot passes
# it along).
BOOT = 6
# As above, and: read the network; its subnets and the addresses in use; check the MAC is free;
# write the port; add it to the project's default security group (read it; read and write the
# port's groups); tell the hosts of the group's ports (the groups that name it as remote; their
# ports; lock and re-number them; read them with their networks and their guests' hosts).
BOOT_ON_A_NETWORK = 21
# Read the servers; their ports with their networks and floating IPs (one join); the hosts' zones;
# the hosts' services; the servers' tags and groups (2.71), their volumes, and their images'
# properties (2.98).
LIST = 8
SHOW = 1  # one statement: the row and all of the above for one server (server_show.py)

# Before (2026-12-05), each with 2 more while the token was validated on every request: boot 16,
# boot on a network 31 with one other member in its group and 2 more for each further member,
# list 8, show 7. Then (2026-12-06) boot 11, boot on a network 26, show 7 through the ORM; the
# limits in one statement took 2 off a boot, and show became one statement (server_show.py). Then
# boot 9 and 24; the flavor and image read together, the count folded into the limits' statement
# and the action written with the instance took 3 more off each.


def _sql(request) -> tuple[object, list[str]]:
    with CaptureQueriesContext(connection) as captured:
        response = request()
    return response, [q["sql"] for q in captured.captured_queries if "SAVEPOINT" not in q["sql"]]


@pytest.fixture
def api(member, api_as, tiny, image, sent):
    api = api_as(member, VERSION)
    # The first request validates the token (the commit of the persona's rows, which the first
    # boot's commit runs, makes that stale again); the second remembers it.
    assert boot(api, image, version=VERSION).status_code == 202
    assert api.get(f"{V}/servers").status_code == 200
    return api


def test_a_boot_costs_a_fixed_few_queries(api, image):
    response, sql = _sql(lambda: boot(api, image, version=VERSION))

    assert response.status_code == 202, response.content
    assert len(sql) == BOOT, "\n".join(sql)


@pytest.mark.parametrize("members", [1, 8])  # the quota allows 10 servers
def test_a_boot_on_a_network_costs_a_fixed_few_more_however_big_its_group(api, image, nets,
                                                                          members):
    """Joining the project's default group tells every member's host of the new address: their
    ports are read, re-numbered and located in a fixed number of queries, not a few each."""
    network = str(nets["alpha"].id)
    for _ in range(members):  # the first makes the default group
        boot(api, image, version=VERSION, networks=[{"uuid": network}])

    response, sql = _sql(lambda: boot(api, image, version=VERSION, networks=[{"uuid": network}]))

    assert response.status_code == 202, response.content
    assert len(sql) == BOOT_ON_A_NETWORK, "\n".join(sql)


def test_a_boot_asks_nothing_about_features_it_does_not_use(api, image):
    _, sql = _sql(lambda: boot(api, image, version=VERSION))

    assert not [s for s in sql if '"identity_token"' in s or '"identity_role"' in s]
    assert not [s for s in sql if 'FROM "compute_servergroup' in s]  # no group asked for
    assert not [s for s in sql if 'FROM "compute_keypair"' in s]  # no key asked for


@pytest.mark.parametrize("servers", [1, 30])
def test_the_detailed_list_costs_the_same_queries_however_many_servers(api, member, servers):
    for n in range(servers):
        give_address(make_server(member, name=f"s{n}", host=f"compute{n % 3}"),
                     addr=f"10.0.0.{10 + n}")

    response, sql = _sql(lambda: api.get(f"{V}/servers/detail"))

    assert response.status_code == 200
    assert len(response.json()["servers"]) == servers + 1
    assert len(sql) == LIST, "\n".join(sql)


def test_show_costs_a_fixed_few_queries(api, member):
    server = make_server(member)
    give_address(server)

    response, sql = _sql(lambda: api.get(f"{V}/servers/{server.uuid}"))

    assert response.status_code == 200
    assert len(sql) == SHOW, "\n".join(sql)


@pytest.mark.parametrize("servers", [1, 30])
def test_an_admins_list_of_every_project_costs_the_same_queries(api, admin, member, api_as,
                                                                servers):
    for n in range(servers):
        give_address(make_server(member, name=f"s{n}", host=f"compute{n % 3}", user_data="eA=="),
                     addr=f"10.0.0.{10 + n}")
    admin_api = api_as(admin, VERSION)
    assert admin_api.get(f"{V}/servers").status_code == 200  # its token validated once

    response, sql = _sql(lambda: admin_api.get(f"{V}/servers/detail?all_tenants=1"))

    assert response.status_code == 200
    shown = response.json()["servers"]
    assert {s["OS-EXT-SRV-ATTR:user_data"] for s in shown if s["name"] != "vm"} == {"eA=="}
    assert len(sql) == LIST, "\n".join(sql)
