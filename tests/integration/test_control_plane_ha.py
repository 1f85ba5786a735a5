"""The control plane run highly available (issue 15, docs/failover.md), as real processes on one
machine: two web processes on two ports (the test plays the load balancer), two scheduler and two
conductor workers under distinct Celery node names (beat's schedule runs on whichever conductor
holds its lock, cloud/conductor/beat.py), and two test-driver agents.

One of each pair is SIGKILLed while boots go through both web processes, with a task in its hands
where it has one (the test holds the rows it must write, as tests/integration/test_faults.py
does), and started again only later: the survivor takes the work, the periodic tasks (the
reconciler among them) run on the surviving conductor, and every server is ACTIVE exactly once.
Then the other half of the pairs dies while everything is deleted through the restarted web
process, and nothing is left behind: no claim, domain, outbox message or instance.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import psycopg
import requests

from tests.integration.helpers import allocation_count, node_rows, wait_until
from tests.integration.test_faults import (
    QUICK,
    boot,
    db,
    delete_all_and_check_clean,
    freeze,
    image_for,
    lock_waiters,
    record,
    thaw,
    wait_all,
)
from tests.stack import AgentSpec, ApiClient, Stack, free_port

V = "/compute/v2.1"
AGENTS = ("ha-1", "ha-2")
FLAVOR = "1"


def start_second(stack: Stack, name: str) -> None:
    """Another process of a kind the stack already runs: a web process on a port of its own, or
    a scheduler or conductor worker under a node name of its own."""
    if name.startswith("web"):
        port = free_port()
        bind = f"127.0.0.1:{stack.port}"
        stack._spawn(name, [f"127.0.0.1:{port}" if a == bind else a for a in stack.argvs["web"]])
    else:
        queue = name.rstrip("0123456789")
        stack._spawn(name, stack._celery_worker(queue, name))


def web_url(stack: Stack, name: str) -> str:
    argv = stack.argvs[name]
    return "http://" + argv[argv.index("--bind") + 1]


def wait_for_web(stack: Stack, url: str) -> None:
    def answers() -> bool:
        try:
            return requests.get(f"{url}/identity", timeout=5).status_code == 300
        except requests.RequestException:
            return False

    wait_until(answers, timeout=60, interval=0.2, what=f"{url} to answer")


class LoadBalancer:
    """What a load balancer in front of the web processes does for a new request: the next web
    process in turn, and the one after it when that one refuses the connection (it is dead)."""

    def __init__(self, clients: list[ApiClient]) -> None:
        self.clients = clients
        self.turn = 0
        self.served: Counter[str] = Counter()

    def boot(self, image_id: str, name: str) -> str:
        for _ in self.clients:
            client = self.clients[self.turn % len(self.clients)]
            self.turn += 1
            try:
                server_id = boot(client, image_id, name)
            except requests.ConnectionError:
                continue  # refused before anything was sent: safe to send elsewhere
            self.served[client.url] += 1
            return server_id
        raise AssertionError(f"no web process took the boot of {name}")


def log_lines(stack: Stack, name: str, needle: str, since: int = 0) -> int:
    """How many lines of the process's log (from byte `since`) contain `needle`."""
    path = Path(stack.workdir / f"{name}.log")
    with open(path, "rb") as log:
        log.seek(since)
        return sum(1 for line in log if needle.encode() in line)


def log_size(stack: Stack, name: str) -> int:
    return Path(stack.workdir / f"{name}.log").stat().st_size


def hold(stack: Stack) -> psycopg.Connection:
    return psycopg.connect(stack.env["DATABASE_URL"].replace("postgres://", "postgresql://"))


def usage(api: ApiClient) -> tuple[int, int]:
    nodes = api.get(f"{V}/os-hypervisors/detail").json()["hypervisors"]
    return (sum(n["memory_mb_used"] for n in nodes), sum(n["vcpus_used"] for n in nodes))


def create_events(api: ApiClient, server_id: str, event: str) -> list[dict]:
    """The server's `event`s, of its one action: its create."""
    actions = api.get(f"{V}/servers/{server_id}/os-instance-actions").json()["instanceActions"]
    assert [a["action"] for a in actions] == ["create"], actions
    action = api.get(f"{V}/servers/{server_id}/os-instance-actions/"
                     f"{actions[0]['request_id']}").json()["instanceAction"]
    return [e for e in action["events"] if e["event"] == event]


def test_one_of_each_pair_killed_loses_no_boot_and_duplicates_none():
    agents = [AgentSpec(host, cpus=16, memory_mb=8192) for host in AGENTS]
    with Stack("control-plane-ha", agents=agents, schedulers=2, extra_env=QUICK).running() as stack:
        started = time.monotonic()
        for name in ("web2", "conductor2"):
            start_second(stack, name)
        web1, web2 = stack.url, web_url(stack, "web2")
        wait_for_web(stack, web2)
        api = stack.client()
        token = api.session.headers["X-Auth-Token"]
        api2 = ApiClient(web2, token, "2.60")
        lb = LoadBalancer([api, api2])
        image_id = image_for(api)
        flavor = api.get(f"{V}/flavors/{FLAVOR}").json()["flavor"]
        baseline = usage(api)

        # --- a scheduler and a web process die with boots in flight
        freeze(stack, "scheduler1")  # so that scheduler0 takes the first boots
        with hold(stack) as holder:
            holder.execute("SELECT 1 FROM compute_computenode FOR UPDATE")  # claims wait
            first = [lb.boot(image_id, f"a-{i}") for i in range(4)]
            assert lb.served == {web1: 2, web2: 2}
            wait_until(lambda: log_lines(stack, "scheduler0", "schedule_instance[") > 0
                       and lock_waiters(stack) > 0, timeout=30,
                       what="scheduler0 to be caught claiming")
            stack.kill("scheduler0")  # its boots in hand, never acknowledged; not restarted yet
            stack.kill("web2")
            first += [lb.boot(image_id, f"a-{i}") for i in range(4, 6)]
            assert lb.served == {web1: 4, web2: 2}, "the dead web process took no request"
            holder.rollback()
        thaw(stack, "scheduler1")
        _, scheduler_failover = wait_all(api, first, {"ACTIVE"}, timeout=45)
        stack.restart("web2")
        wait_for_web(stack, web2)

        # --- a conductor dies with the hosts' `spawned` reports in hand
        for host in AGENTS:
            freeze(stack, host)  # the builds wait at their hosts, claimed, spawning
        second = [lb.boot(image_id, f"b-{i}") for i in range(4)]
        assert lb.served == {web1: 6, web2: 4}
        wait_until(lambda: db(stack, "SELECT count(*) FROM compute_instance WHERE task_state = "
                                     "'spawning'")[0][0] == len(second),
                   timeout=30, what="the builds to reach their hosts (scheduler1 alone)")
        freeze(stack, "conductor2")  # so that the reports go to the first conductor
        mark = log_size(stack, "conductor")
        with hold(stack) as holder:
            holder.execute("SELECT 1 FROM compute_instance FOR UPDATE")  # applying `spawned` waits
            for host in AGENTS:
                thaw(stack, host)
            wait_until(lambda: log_lines(stack, "conductor", "instance_event[", mark) > 0
                       and lock_waiters(stack) > 0, timeout=30,
                       what="the first conductor to be caught applying a report")
            stack.kill("conductor")  # not restarted until every build has ended
            holder.rollback()
        killed_at = log_size(stack, "conductor2")
        thaw(stack, "conductor2")
        _, conductor_failover = wait_all(api, second, {"ACTIVE"}, timeout=60)
        # What the dead conductor held is redelivered only after Redis's visibility timeout
        # (300 s): the reconciler, a periodic task, finished those builds on the second conductor.
        redriven = [s for s in second if create_events(api, s, "conductor_redrive")]
        assert redriven, "no build was finished by the second conductor's reconciler"
        assert log_lines(stack, "conductor2", "conductor.reconcile[", killed_at) > 0
        hypervisors = api.get(f"{V}/os-hypervisors").json()["hypervisors"]
        assert {h["state"] for h in hypervisors} == {"up"}, "host reports stopped with conductor"

        # --- every server ACTIVE exactly once: one build each, one domain each, one claim each
        ids = first + second
        assert len(set(ids)) == 10
        for server_id in ids:
            built = create_events(api, server_id, "compute_build_and_run_instance")
            assert [e["result"] for e in built] == ["Success"], (server_id, built)
        reported = {host: node["domains"] for host, node in node_rows(stack).items()}
        assert sorted(u for domains in reported.values() for u in domains) == sorted(ids), reported
        for server_id in ids:
            host = api.get(f"{V}/servers/{server_id}").json()["server"]["OS-EXT-SRV-ATTR:host"]
            assert server_id in reported[host]
        assert allocation_count(stack) == len(ids)
        assert usage(api) == (baseline[0] + len(ids) * flavor["ram"],
                              baseline[1] + len(ids) * flavor["vcpus"])

        # --- the dead ones come back; the other half of each pair dies while all is deleted
        stack.restart("scheduler0")
        stack.restart("conductor")
        stack.kill("web")
        for server_id in ids:
            assert api2.delete(f"{V}/servers/{server_id}").status_code == 204
        stack.kill("conductor2")  # with `destroyed` reports in hand, perhaps
        deleting = time.monotonic()
        for server_id in ids:
            api2.wait_gone(server_id, timeout=45)
        deleted = time.monotonic() - deleting
        left = delete_all_and_check_clean(stack, api2, ids)  # each DELETE a 404 now
        assert usage(api2) == baseline
        for name in ("web", "conductor2"):
            stack.restart(name)
        wait_for_web(stack, web1)
        assert all(stack.alive().values()), stack.alive()
        record("control plane HA: one of each pair SIGKILLed", servers=len(ids),
               redriven=len(redriven), seconds_after_start_up=round(time.monotonic() - started, 1),
               scheduler_killed_to_all_active_s=round(scheduler_failover, 1),
               conductor_killed_to_all_active_s=round(conductor_failover, 1),
               conductor_killed_to_all_deleted_s=round(deleted, 1),
               left_behind=left)
