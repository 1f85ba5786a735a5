"""Where servers land, on a live stack of three compute hosts: server-group policies (hard and
soft) and availability zones from aggregates, driven only through HTTP."""

from __future__ import annotations

import pytest

from tests.stack import AgentSpec, Stack, qcow2_bytes

V = "/compute/v2.1"
HOSTS = {"c1", "c2", "c3"}


@pytest.fixture(scope="module")
def placement_stack():
    live = Stack("placement", agents=[AgentSpec("c1"), AgentSpec("c2"), AgentSpec("c3")])
    with live.running():
        yield live


@pytest.fixture(scope="module")
def api(placement_stack):
    return placement_stack.client()


@pytest.fixture(scope="module")
def image_id(api):
    return api.upload_image("placement-image", qcow2_bytes())


def _group(api, policy: str) -> str:
    response = api.post(f"{V}/os-server-groups",
                        {"server_group": {"name": f"it-{policy}", "policies": [policy]}})
    assert response.status_code == 200, response.text
    return response.json()["server_group"]["id"]


def _boot(api, image_id, name: str, *, group: str | None = None, count: int = 1,
          zone: str | None = None) -> str:
    server = {"name": name, "imageRef": image_id, "flavorRef": "1", "networks": "none",
              "min_count": count, "max_count": count}
    if zone:
        server["availability_zone"] = zone
    body = {"server": server}
    if group:
        body["os:scheduler_hints"] = {"group": group}
    response = api.post(f"{V}/servers", body)
    assert response.status_code == 202, response.text
    return response.json()["server"]["id"]


def _members(api, group: str) -> list[str]:
    return api.get(f"{V}/os-server-groups/{group}").json()["server_group"]["members"]


def _delete_all(api, server_ids: list[str], group: str | None = None) -> None:
    for sid in server_ids:
        assert api.delete(f"{V}/servers/{sid}").status_code == 204
    for sid in server_ids:
        api.wait_gone(sid)
    if group:
        assert api.delete(f"{V}/os-server-groups/{group}").status_code == 204


def test_anti_affinity_spreads_three_servers_over_three_hosts_and_refuses_a_fourth(api, image_id):
    group = _group(api, "anti-affinity")
    # One request for three: their schedules run at once, so this also races the claims.
    _boot(api, image_id, "anti", group=group, count=3)
    ids = _members(api, group)
    assert len(ids) == 3
    servers = [api.wait_for(sid, {"ACTIVE", "ERROR"}, timeout=120) for sid in ids]
    assert [s["status"] for s in servers] == ["ACTIVE"] * 3, [s.get("fault") for s in servers]
    assert {s["OS-EXT-SRV-ATTR:host"] for s in servers} == HOSTS

    fourth_id = _boot(api, image_id, "anti-4", group=group)
    fourth = api.wait_for(fourth_id, {"ACTIVE", "ERROR"}, timeout=120)
    assert fourth["status"] == "ERROR"
    assert fourth["fault"]["message"].startswith("No valid host was found")
    assert "ServerGroupAntiAffinityFilter removed 3 hosts" in fourth["fault"]["details"]

    _delete_all(api, [*ids, fourth_id], group)


def test_affinity_puts_three_servers_on_one_host(api, image_id):
    group = _group(api, "affinity")
    _boot(api, image_id, "aff", group=group, count=3)
    ids = _members(api, group)
    servers = [api.wait_for(sid, {"ACTIVE", "ERROR"}, timeout=120) for sid in ids]
    assert [s["status"] for s in servers] == ["ACTIVE"] * 3, [s.get("fault") for s in servers]
    assert len({s["OS-EXT-SRV-ATTR:host"] for s in servers}) == 1

    _delete_all(api, ids, group)


def test_soft_anti_affinity_boots_four_servers_on_three_hosts_spread_over_all(api, image_id):
    group = _group(api, "soft-anti-affinity")
    ids = []
    for i in range(4):
        # One at a time: a soft policy is a preference the scheduler weighs against what it last
        # read, not a rule re-checked under a lock.
        ids.append(_boot(api, image_id, f"soft-{i}", group=group))
        api.wait_for(ids[-1], {"ACTIVE", "ERROR"}, timeout=120)
    servers = [api.get(f"{V}/servers/{sid}").json()["server"] for sid in ids]
    assert [s["status"] for s in servers] == ["ACTIVE"] * 4, [s.get("fault") for s in servers]
    assert {s["OS-EXT-SRV-ATTR:host"] for s in servers} == HOSTS
    assert sorted(_members(api, group)) == sorted(ids)

    _delete_all(api, ids, group)


def test_a_server_asking_for_an_aggregates_zone_lands_on_its_host(api, image_id):
    created = api.post(f"{V}/os-aggregates",
                       {"aggregate": {"name": "it-az1", "availability_zone": "az1"}})
    assert created.status_code == 200, created.text
    aggregate = created.json()["aggregate"]["id"]
    added = api.post(f"{V}/os-aggregates/{aggregate}/action", {"add_host": {"host": "c3"}})
    assert added.status_code == 200, added.text

    zones = api.get(f"{V}/os-availability-zone").json()["availabilityZoneInfo"]
    assert {z["zoneName"] for z in zones} == {"az1", "nova"}
    assert all(z["zoneState"]["available"] for z in zones)

    server_id = _boot(api, image_id, "zoned", zone="az1")
    server = api.wait_for(server_id, {"ACTIVE", "ERROR"}, timeout=120)
    assert server["status"] == "ACTIVE", server.get("fault")
    assert server["OS-EXT-SRV-ATTR:host"] == "c3"
    assert server["OS-EXT-AZ:availability_zone"] == "az1"

    _delete_all(api, [server_id])
    removed = api.post(f"{V}/os-aggregates/{aggregate}/action", {"remove_host": {"host": "c3"}})
    assert removed.status_code == 200, removed.text
    assert api.delete(f"{V}/os-aggregates/{aggregate}").status_code == 200
    assert api.get(f"{V}/os-aggregates").json()["aggregates"] == []


def test_ten_concurrent_boots_into_one_group_end_without_a_5xx_and_keep_its_policy(api, image_id):
    """Two schedulers claim while ten requests reserve quota in one anti-affinity group: no request
    may fail with a 5xx (a deadlock among their row locks once did), every server ends, and no two
    members ever share a host."""
    from concurrent.futures import ThreadPoolExecutor

    group = _group(api, "anti-affinity")
    body = {"server": {"name": "racer", "imageRef": image_id, "flavorRef": "1",
                       "networks": "none"}, "os:scheduler_hints": {"group": group}}

    with ThreadPoolExecutor(max_workers=10) as pool:
        responses = list(pool.map(lambda _: api.post(f"{V}/servers", body), range(10)))
    assert [r.status_code for r in responses] == [202] * 10, [r.text for r in responses]
    ids = [r.json()["server"]["id"] for r in responses]
    servers = [api.wait_for(sid, {"ACTIVE", "ERROR"}, timeout=120) for sid in ids]
    active = [s for s in servers if s["status"] == "ACTIVE"]
    assert len(active) == 3, [s.get("fault") for s in servers]
    assert {s["OS-EXT-SRV-ATTR:host"] for s in active} == HOSTS  # one member per host, no more
    assert all("No valid host" in s["fault"]["message"] for s in servers if s not in active)

    _delete_all(api, ids, group)
