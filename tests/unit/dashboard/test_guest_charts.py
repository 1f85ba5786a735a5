"""An instance's charts: the page offers them, its websocket starts with the kept history and gets a
point each time the conductor records the instance's host's report, only for people who may see
the instance, and follows the instance when it moves to another host."""

from __future__ import annotations

import asyncio
import time

import pytest
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.db import connections

from cloud.compute import guest_stats
from cloud.compute.models import Instance
from cloud.dashboard.routing import websocket_urlpatterns
from compute_agent import messages as msg
from tests.factories import make_server

from .conftest import signed_in

application = URLRouter(websocket_urlpatterns)
pytestmark = pytest.mark.usefixtures("guest_stats_redis")


def run(coro):
    return asyncio.run(coro)


def report(instance, cpu_s: float, at: float, host: str = "compute1") -> None:
    guest_stats.record(msg.GuestStatsReport(host=host, collected_at=at, interval=10.0, guests=[
        msg.GuestStats(uuid=str(instance.uuid), power_state=msg.POWER_RUNNING,
                       cpu_time_ns=int(cpu_s * 1e9), vcpus=1, memory_max_kib=131072,
                       memory_kib=131072, memory_rss_kib=32768)]))


def socket(persona, instance) -> WebsocketCommunicator:
    cookie = f"sessionid={signed_in(persona).cookies['sessionid'].value}".encode()
    return WebsocketCommunicator(
        application, f"/ws/guest-stats/?instance={instance.uuid}",
        headers=[(b"host", b"testserver"), (b"origin", b"http://testserver"), (b"cookie", cookie)])


@pytest.fixture
def _close_connections():
    yield
    run(sync_to_async(connections.close_all)())


@pytest.mark.django_db
def test_the_overview_page_has_the_four_charts(member):
    vm = make_server(member, "vm1")
    page = signed_in(member).get(f"/instances/{vm.uuid}/").content.decode()
    assert f'data-guest-stats="{vm.uuid}"' in page and "dashboard/guest_charts.js" in page
    for chart in ("cpu", "memory", "disk", "network"):
        assert f'data-chart="{chart}"' in page


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("_close_connections")
def test_history_first_then_a_point_per_report_and_the_instance_is_followed(member, other):
    vm = make_server(member, "vm1")
    now = time.time()
    report(vm, 1.0, now - 20)
    report(vm, 3.0, now - 10)  # 2 s of CPU in 10 s on 1 vCPU: 20 %

    stranger, sock = socket(other, vm), socket(member, vm)

    async def scenario():
        assert not (await stranger.connect(timeout=5))[0]  # another project's: no such instance
        assert (await sock.connect(timeout=5))[0]
        history = await sock.receive_json_from(timeout=5)
        await sync_to_async(report)(vm, 8.0, now)  # 5 s in 10 s: 50 %
        point = await sock.receive_json_from(timeout=5)
        # Moved to compute2: its reports reach the page, compute1's no longer do.
        await sync_to_async(lambda: Instance.objects.filter(pk=vm.pk).update(host="compute2"))()
        from cloud.dashboard import live  # the conductor's move announces the change
        await sync_to_async(live.publish)(str(vm.uuid))
        await asyncio.sleep(0.2)
        await sync_to_async(report)(vm, 9.0, now + 10, "compute2")
        moved = await sock.receive_json_from(timeout=5)
        await sock.disconnect()
        return history, point, moved

    history, point, moved = run(scenario())
    assert history["type"] == "history"
    assert [p["cpu_percent"] for p in history["points"]] == [None, 20.0]
    assert history["points"][-1]["memory_used_mib"] == 32.0
    assert point["type"] == "point" and point["point"]["cpu_percent"] == 50.0
    assert moved["type"] == "point" and moved["point"]["cpu_percent"] is None  # a new qemu there
