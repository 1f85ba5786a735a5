"""Faults injected into real processes: whatever dies and whenever, every accepted request ends
(ACTIVE, SHUTOFF, deleted, or ERROR with a fault in words), nothing is lost, and once everything
is deleted nothing is left behind: no claim, no domain, no outbox message.

Each scenario starts a stack of its own (tests/stack.py) with short deadlines, injects its fault,
and writes its figures (requests in flight, how many ended, the slowest, what was left) to
artifacts/faults/figures.json for the record.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import psycopg
import pytest
import redis

from tests.integration.helpers import allocation_count, node_rows, wait_until
from tests.stack import REDIS_BASE, ROOT, AgentSpec, Stack, qcow2_bytes

V = "/compute/v2.1"
FIGURES = Path(os.environ.get("KUMO_ARTIFACTS_DIR", ROOT / "artifacts")) / "faults" / "figures.json"
# Short deadlines, so that a lost message is re-driven within seconds.
QUICK = {
    "KUMO_TASK_DEADLINES": "scheduling=5,spawning=8,deleting=6,default=20",
    "KUMO_RECONCILE_INTERVAL": "2",
    "KUMO_OUTBOX_RELAY_INTERVAL": "1",
}
END_STATES = {"ACTIVE", "ERROR", "SHUTOFF"}


def record(scenario: str, **figures: object) -> None:
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    known = json.loads(FIGURES.read_text()) if FIGURES.exists() else {}
    known[scenario] = figures
    FIGURES.write_text(json.dumps(known, indent=2, sort_keys=True))


def db(stack: Stack, sql: str) -> list[tuple]:
    with psycopg.connect(stack.env["DATABASE_URL"].replace("postgres://", "postgresql://")) as conn:
        return conn.execute(sql).fetchall()


def boot(api, image_id: str, name: str, zone: str | None = None) -> str:
    body = {"server": {"name": name, "imageRef": image_id, "flavorRef": "1", "networks": "none"}}
    if zone is not None:
        body["server"]["availability_zone"] = zone  # "nova:host" places it there (admins)
    response = api.post(f"{V}/servers", body)
    assert response.status_code == 202, response.text
    return response.json()["server"]["id"]


def wait_all(api, ids: list[str], statuses: set[str], timeout: float) -> tuple[dict, float]:
    """Every server in an end state among `statuses` (no task running): their bodies, and the
    seconds the slowest took."""
    started = time.monotonic()
    bodies: dict[str, dict] = {}
    deadline = started + timeout
    while len(bodies) < len(ids):
        for sid in ids:
            if sid in bodies:
                continue
            server = api.get(f"{V}/servers/{sid}").json()["server"]
            if server["status"] in statuses and server["OS-EXT-STS:task_state"] is None:
                bodies[sid] = server
        if time.monotonic() > deadline:
            stuck = {}
            for sid in ids:
                if sid not in bodies:
                    server = api.get(f"{V}/servers/{sid}").json()["server"]
                    stuck[sid] = (server["status"], (server.get("fault") or {}).get("message"))
            raise AssertionError(f"not ended after {timeout} s: {stuck}")
        time.sleep(0.3)
    return bodies, time.monotonic() - started


def delete_all_and_check_clean(stack: Stack, api, ids: list[str], timeout: float = 60) -> dict:
    """Delete the servers, wait until they are gone, and return what is left behind (all zero)."""
    for sid in ids:
        assert api.delete(f"{V}/servers/{sid}").status_code in (204, 404)
    for sid in ids:
        api.wait_gone(sid, timeout=timeout)
    wait_until(lambda: allocation_count(stack) == 0, timeout=30, what="every claim released")
    # The agents report every second; a leftover domain would be in their latest report.
    time.sleep(3)
    left = {
        "claims": allocation_count(stack),
        "domains": sum(len(n["domains"]) for n in node_rows(stack).values()),
        "used_mb": sum(n["memory_mb_used"] for n in node_rows(stack).values()),
        "outbox": db(stack, "SELECT count(*) FROM outbox_outboxmessage")[0][0],
        "stuck": db(stack, "SELECT count(*) FROM compute_instance WHERE NOT deleted")[0][0],
    }
    assert left == {"claims": 0, "domains": 0, "used_mb": 0, "outbox": 0, "stuck": 0}, left
    return left


def image_for(api) -> str:
    return api.upload_image("faults", qcow2_bytes())


# --- the broker goes away for 15 s while boots arrive: longer than every deadline of QUICK but
# the default, and than the time after which a silent host is down, so the hosts are down when
# it comes back, as after the 30 s against 20 s down time this scenario used to take


OUTAGE_S = 15


@pytest.mark.parametrize("broker", ["redis", "rabbitmq"])
def test_a_broker_outage_delays_boots_and_loses_none(broker):
    agents = [AgentSpec("bk-1", cpus=16, memory_mb=8192), AgentSpec("bk-2", cpus=16, memory_mb=8192)]
    env = {**QUICK, "KUMO_SERVICE_DOWN_TIME": "10"}
    with Stack(f"outage-{broker}", agents=agents, schedulers=1, broker=broker, broker_link=True,
               extra_env=env).running() as stack:
        api = stack.client()
        image_id = image_for(api)
        before = [boot(api, image_id, f"before-{i}") for i in range(2)]
        assert stack.link is not None
        with stack.link.outage():
            if broker == "redis":
                # A Redis that keeps nothing on disk comes back empty: every queued message is gone.
                redis.Redis.from_url(f"{REDIS_BASE}/{stack.redis_db}").flushdb()
            accepted = time.monotonic()
            during = [boot(api, image_id, f"during-{i}") for i in range(4)]
            answer_time = time.monotonic() - accepted
            time.sleep(OUTAGE_S)
            alive = stack.alive()
        assert all(alive.values()), f"processes died while the broker was away: {alive}"
        bodies, slowest = wait_all(api, before + during, {"ACTIVE"}, timeout=120)
        assert all(b["status"] == "ACTIVE" for b in bodies.values())
        left = delete_all_and_check_clean(stack, api, before + during)
        record(f"broker outage {OUTAGE_S} s ({broker})", in_flight=len(before) + len(during),
               accepted_during_outage=len(during), ended=len(bodies),
               seconds_to_accept_during_outage=round(answer_time / len(during), 2),
               slowest_after_broker_back_s=round(slowest, 1), left_behind=left)


# --- a process is killed (SIGKILL: no goodbye, no acknowledgement) with work in its hands


def freeze(stack: Stack, name: str) -> None:
    """SIGSTOP: the process holds whatever it took, and does nothing with it."""
    import signal

    os.killpg(stack.procs[name].pid, signal.SIGSTOP)


def thaw(stack: Stack, name: str) -> None:
    import signal

    os.killpg(stack.procs[name].pid, signal.SIGCONT)


def placed_on(api, ids: list[str], host: str) -> list[str]:
    return [sid for sid in ids
            if api.get(f"{V}/servers/{sid}").json()["server"].get("OS-EXT-SRV-ATTR:host") == host]


BROKERS = ["redis", "rabbitmq"]
# The one agent of the stack the SIGKILL scenarios share.
AGENT = "kw-1"


@pytest.fixture(scope="module", params=BROKERS)
def kill_stack(request):
    """One stack per broker for the SIGKILL scenarios below (a stack start is 10-15 s of a
    scenario's 30): each scenario starts from no server at all and ends, asserted by
    delete_all_and_check_clean, with no server, claim, domain or outbox message left and every
    process running again, which is where the next one starts."""
    agents = [AgentSpec(AGENT, cpus=16, memory_mb=8192)]
    with Stack(f"kill-{request.param}", agents=agents, schedulers=1, broker=request.param,
               extra_env=QUICK).running() as stack:
        yield stack


def test_an_agent_killed_mid_spawn_and_restarted_leaves_no_build_behind(kill_stack):
    stack, broker = kill_stack, kill_stack.broker
    api = stack.client()
    image_id = image_for(api)
    freeze(stack, AGENT)
    ids = [boot(api, image_id, f"spawn-{i}") for i in range(4)]
    wait_until(lambda: len(placed_on(api, ids, AGENT)) == 4, timeout=30,
               what="the spawns to reach the frozen agent")
    stack.kill(AGENT)
    stack.restart(AGENT)
    bodies, slowest = wait_all(api, ids, END_STATES, timeout=90)
    ended = [b["status"] for b in bodies.values()]
    assert ended == ["ACTIVE"] * 4, ended
    left = delete_all_and_check_clean(stack, api, ids)
    record(f"agent SIGKILL mid-spawn ({broker})", in_flight=len(ids), ended=len(bodies),
           statuses=sorted(ended), slowest_s=round(slowest, 1), left_behind=left)


def test_an_agent_killed_mid_delete_and_restarted_finishes_every_delete(kill_stack):
    stack, broker = kill_stack, kill_stack.broker
    api = stack.client()
    image_id = image_for(api)
    ids = [boot(api, image_id, f"delete-{i}") for i in range(4)]
    wait_all(api, ids, {"ACTIVE"}, timeout=60)
    freeze(stack, AGENT)
    for sid in ids:
        assert api.delete(f"{V}/servers/{sid}").status_code == 204
    stack.kill(AGENT)
    stack.restart(AGENT)
    started = time.monotonic()
    left = delete_all_and_check_clean(stack, api, ids)
    record(f"agent SIGKILL mid-delete ({broker})", in_flight=len(ids), ended=len(ids),
           slowest_s=round(time.monotonic() - started, 1), left_behind=left)


def lock_waiters(stack: Stack) -> int:
    """Backends of the stack's database that wait on a row lock."""
    return db(stack, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                     "AND wait_event_type = 'Lock'")[0][0]


# The rows a worker must write to finish its part: the test holds them, so the worker is caught
# in the middle of a task, holding its message unacknowledged, when it is killed.
HELD_ROWS = {
    "scheduler0": "SELECT 1 FROM compute_computenode FOR UPDATE",  # the claim's UPDATE waits
    "conductor": "SELECT 1 FROM compute_instance FOR UPDATE",  # applying `spawned` waits
}


@pytest.mark.parametrize("process", sorted(HELD_ROWS))
def test_a_worker_killed_mid_task_and_restarted_loses_no_boot(process, kill_stack):
    stack, broker = kill_stack, kill_stack.broker
    api = stack.client()
    image_id = image_for(api)
    url = stack.env["DATABASE_URL"].replace("postgres://", "postgresql://")
    redrives = "SELECT count(*) FROM compute_instanceactionevent WHERE event = 'conductor_redrive'"
    redriven_before = db(stack, redrives)[0][0]  # the shared stack's earlier scenarios'
    with psycopg.connect(url) as holder:
        if process == "conductor":
            freeze(stack, AGENT)  # the builds wait at their host, claimed, spawning
        ids = [boot(api, image_id, f"pending-{i}") for i in range(4)]
        if process == "conductor":
            wait_until(lambda: db(stack, "SELECT count(*) FROM compute_instance "
                                         "WHERE task_state = 'spawning'")[0][0] == 4,
                       timeout=30, what="the builds to reach their host")
        holder.execute(HELD_ROWS[process])
        if process == "conductor":
            thaw(stack, AGENT)  # it builds them and reports; applying a report waits
        wait_until(lambda: lock_waiters(stack) > 0, timeout=30,
                   what=f"the {process} to be caught mid-task")
        stack.kill(process)  # with a task in its hands, never acknowledged
        holder.rollback()
    stack.restart(process)
    bodies, slowest = wait_all(api, ids, END_STATES, timeout=90)
    ended = [b["status"] for b in bodies.values()]
    assert ended == ["ACTIVE"] * 4, ended
    redriven = db(stack, redrives)[0][0] - redriven_before
    left = delete_all_and_check_clean(stack, api, ids)
    record(f"{process} SIGKILL mid-task ({broker})", in_flight=len(ids), ended=len(bodies),
           redriven=redriven, slowest_s=round(slowest, 1), left_behind=left)


@pytest.mark.parametrize("broker", BROKERS)
def test_a_host_that_never_returns_strands_nothing(broker):
    agents = [AgentSpec("hn-1", cpus=16, memory_mb=8192), AgentSpec("hn-2", cpus=16, memory_mb=8192)]
    env = {**QUICK, "KUMO_SERVICE_DOWN_TIME": "6"}
    with Stack(f"host-gone-{broker}", agents=agents, schedulers=1, broker=broker,
               extra_env=env).running() as stack:
        api = stack.client()
        image_id = image_for(api)
        # Two servers on each host, placed by hand: the scheduler's threads decide concurrent
        # boots from the same view, so four at once may all land on one host.
        ids = [boot(api, image_id, f"gone-{i}", zone=f"nova:hn-{1 + i % 2}") for i in range(4)]
        wait_all(api, ids, {"ACTIVE"}, timeout=60)
        stranded = placed_on(api, ids, "hn-2")
        assert len(stranded) == 2, "two servers were placed on hn-2"
        stack.kill("hn-2")  # for good
        wait_until(lambda: any(h["state"] == "down" for h in
                               api.get(f"{V}/os-hypervisors").json()["hypervisors"]),
                   timeout=30, what="hn-2 to be seen down")
        server = api.get(f"{V}/servers/{stranded[0]}", headers={
            "OpenStack-API-Version": "compute 2.16"}).json()["server"]
        assert server["host_status"] == "UNKNOWN"
        refused = api.post(f"{V}/servers/{stranded[0]}/action", {"os-stop": None})
        assert refused.status_code == 409 and "hn-2 is not responding" in refused.text
        started = time.monotonic()
        for sid in stranded:
            assert api.delete(f"{V}/servers/{sid}").status_code == 204
            api.wait_gone(sid, timeout=10)  # completed here, without the host
        local_delete = time.monotonic() - started
        new = [boot(api, image_id, f"after-{i}") for i in range(2)]
        bodies, _ = wait_all(api, new, {"ACTIVE"}, timeout=60)
        assert {b["OS-EXT-SRV-ATTR:host"] for b in bodies.values()} == {"hn-1"}
        survivors = [sid for sid in ids if sid not in stranded] + new
        for sid in survivors:
            assert api.delete(f"{V}/servers/{sid}").status_code == 204
        for sid in survivors:
            api.wait_gone(sid)
        wait_until(lambda: allocation_count(stack) == 0, what="every claim released")
        record(f"a host that never returns ({broker})", stranded=len(stranded),
               seconds_to_delete_them=round(local_delete, 1), new_boots_elsewhere=len(new),
               left_behind={"claims": allocation_count(stack)})
