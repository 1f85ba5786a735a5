"""Concurrent boots into one server group on PostgreSQL: every boot is accepted or refused with a
4xx (never a deadlock or another 5xx), the group's quota holds and so does its policy."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

from cloud.compute import servers
from cloud.compute.models import Flavor, Instance, ServerGroup
from cloud.compute.servers import ServerRequest
from cloud.errors import KumoError
from cloud.identity.context import RequestContext
from cloud.images.models import Image
from tests.personas import make_persona

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql",
                       reason="row locks and deferred constraints need PostgreSQL"),
]


def test_ten_concurrent_boots_into_one_group_all_end_in_2xx_or_4xx(monkeypatch):
    # The broker is the edge here; the schedulers below run in threads, as two would in life.
    from cloud import rpc
    from cloud.scheduler.manager import schedule_instance
    from tests.factories import make_node

    monkeypatch.setattr(rpc.app, "send_task", lambda *a, **k: None)
    for host in ("c1", "c2", "c3"):
        make_node(host, vcpus=64, memory_mb=65536, local_gb=1000)
    people = [make_persona(f"user{i}", "groupies", ["member", "reader"]) for i in range(2)]
    flavor = Flavor.objects.create(flavorid="1", name="m1.tiny", vcpus=1, memory_mb=64, root_gb=1)
    image = Image.objects.create(name="img", status="active", disk_format="qcow2",
                                 container_format="bare", visibility="public", size=1)
    group = ServerGroup.objects.create(name="g", policy="anti-affinity", project=people[0].project,
                                       user=people[0].user)
    start = threading.Barrier(10)
    outcomes: list[object] = []

    def boot(i: int) -> None:
        person = people[i % 2]
        ctx = RequestContext(user_id=person.user.pk, user_name=person.user.name,
                             project_id=person.project.pk, project_name=person.project.name,
                             roles=("member", "reader"), request_id=f"req-{i}")
        try:
            start.wait()
            servers.create_servers(ctx, ServerRequest(
                name=f"vm{i}", image_id=str(image.id), flavor_ref=flavor.flavorid,
                networks="none", scheduler_hints={"group": str(group.pk)}, min_count=2,
                max_count=2))
            outcomes.append("ok")
        except KumoError as refused:
            outcomes.append(refused.status)
        except Exception as crash:  # noqa: BLE001 - a crash is what this test looks for
            outcomes.append(repr(crash))
        finally:
            connections.close_all()

    booting = threading.Event()

    def schedule() -> None:
        try:
            while booting.is_set() or Instance.objects.filter(task_state="scheduling").exists():
                for uuid in Instance.objects.filter(task_state="scheduling").values_list(
                        "uuid", flat=True):
                    try:
                        schedule_instance(str(uuid), "req-s")
                    except Exception as crash:  # noqa: BLE001
                        outcomes.append(repr(crash))
        finally:
            connections.close_all()

    booting.set()
    schedulers = [threading.Thread(target=schedule) for _ in range(2)]
    for t in schedulers:
        t.start()
    threads = [threading.Thread(target=boot, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    booting.clear()
    for t in schedulers:
        t.join()
    crashes = [o for o in outcomes if not (o == "ok" or (isinstance(o, int) and o < 500))]
    assert not crashes, crashes
    members = Instance.objects.filter(group_member__group=group, deleted=False).count()
    assert members <= 10  # the default server_group_members quota
    assert outcomes.count("ok") * 2 == members
    placed = list(Instance.objects.filter(group_member__group=group, deleted=False,
                                          host__isnull=False).values_list("host", flat=True))
    assert placed and len(placed) == len(set(placed)) <= 3  # anti-affinity held: one per host
