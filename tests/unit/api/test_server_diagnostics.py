"""GET /servers/{id}/diagnostics: Nova's two shapes from the statistics the server's host sent,
admins only, 409 for a server that is not running or not yet reported, 404 for what the caller
cannot see."""

from __future__ import annotations

import time

import pytest

from cloud.compute import guest_stats
from compute_agent import messages as msg
from tests.factories import make_server

pytestmark = pytest.mark.usefixtures("mv2104", "guest_stats_redis")
V = "/compute/v2.1"


def stats(uuid: str, cpu_s: float, vcpu_times: list[int] | None = None) -> msg.GuestStats:
    return msg.GuestStats(
        uuid=uuid, power_state=msg.POWER_RUNNING, cpu_time_ns=int(cpu_s * 1e9), vcpus=2,
        vcpu_times_ns=vcpu_times or [], memory_max_kib=262144, memory_kib=262144,
        memory_rss_kib=100 * 1024,
        disks=[msg.DiskStats("vda", read_bytes=int(cpu_s * 1000), read_requests=7,
                             write_bytes=4096, write_requests=2)],
        nics=[msg.NicStats("tapabc", "fa:16:3e:00:00:01", rx_bytes=int(cpu_s * 100),
                           rx_packets=5, tx_bytes=300, tx_packets=3, tx_drops=1)],
    )


def reported(server, *samples: msg.GuestStats, host: str = "compute1", start: float | None = None):
    at = time.time() - 10 * len(samples) if start is None else start
    for i, sample in enumerate(samples):
        guest_stats.record(msg.GuestStatsReport(host=host, collected_at=at + 10 * (i + 1),
                                                interval=10.0, guests=[sample]))


@pytest.fixture
def server(member):
    return make_server(member, launched_at=None)


def test_from_2_48_the_standard_object_with_rates_from_the_last_two_samples(admin, api_as, server):
    uuid = str(server.uuid)
    reported(server, stats(uuid, 10.0), stats(uuid, 15.0))  # 5 s of CPU in 10 s on 2 vCPUs
    body = api_as(admin).get(f"{V}/servers/{uuid}/diagnostics", version="2.48").json()
    assert body == {
        "state": "running", "driver": "libvirt", "hypervisor": None, "hypervisor_os": "linux",
        "uptime": None, "config_drive": False, "num_cpus": 2, "num_disks": 1, "num_nics": 1,
        "memory_details": {"maximum": 256, "used": 100},
        "cpu_details": [{"id": None, "time": 15_000_000_000, "utilisation": 25}],
        "disk_details": [{"read_bytes": 15000, "read_requests": 7, "write_bytes": 4096,
                          "write_requests": 2, "errors_count": None}],
        "nic_details": [{"mac_address": "fa:16:3e:00:00:01", "rx_octets": 1500, "rx_errors": 0,
                         "rx_drop": 0, "rx_packets": 5, "rx_rate": 50, "tx_octets": 300,
                         "tx_errors": 0, "tx_drop": 1, "tx_packets": 3, "tx_rate": 0}],
    }


def test_per_vcpu_times_when_the_hypervisor_gives_them(admin, api_as, server):
    uuid = str(server.uuid)
    reported(server, stats(uuid, 1.0, [0, 0]), stats(uuid, 2.0, [5 * 10**9, 10**9]))
    body = api_as(admin).get(f"{V}/servers/{uuid}/diagnostics", version="2.48").json()
    assert body["cpu_details"] == [{"id": 0, "time": 5 * 10**9, "utilisation": 50},
                                   {"id": 1, "time": 10**9, "utilisation": 10}]


def test_before_2_48_libvirt_s_own_keys(admin, api_as, server):
    uuid = str(server.uuid)
    reported(server, stats(uuid, 3.0))
    body = api_as(admin).get(f"{V}/servers/{uuid}/diagnostics", version="2.47").json()
    assert body == {
        "cpu_time": 3_000_000_000,
        "vda_read_req": 7, "vda_read": 3000, "vda_write_req": 2, "vda_write": 4096,
        "vda_errors": -1,
        "memory": 262144, "memory-actual": 262144, "memory-rss": 102400,
        "tapabc_rx": 300, "tapabc_rx_packets": 5, "tapabc_rx_errors": 0, "tapabc_rx_drop": 0,
        "tapabc_tx": 300, "tapabc_tx_packets": 3, "tapabc_tx_errors": 0, "tapabc_tx_drop": 1,
    }


def test_only_admins_by_default_and_others_projects_servers_are_missing(
    admin, member, reader, other, api_as, server
):
    reported(server, stats(str(server.uuid), 1.0))
    url = f"{V}/servers/{server.uuid}/diagnostics"
    assert api_as(admin).get(url).status_code == 200
    assert api_as(member).get(url).status_code == 403
    assert api_as(reader).get(url).status_code == 403
    assert api_as(other).get(url).json()["itemNotFound"]["code"] == 404
    missing = api_as(admin).get(f"{V}/servers/8f2ad0a4-7b1c-4ad6-a86b-9d4b1e6a3c11/diagnostics")
    assert missing.status_code == 404


def test_a_stopped_server_is_a_conflict(admin, member, api_as):
    stopped = make_server(member, "off", vm_state="stopped", power_state="shutdown")
    reported(stopped, stats(str(stopped.uuid), 1.0))
    answer = api_as(admin).get(f"{V}/servers/{stopped.uuid}/diagnostics")
    assert answer.status_code == 409
    assert "while it is in vm_state stopped" in answer.json()["conflictingRequest"]["message"]


def test_no_recent_statistics_is_a_conflict_not_old_numbers(admin, api_as, server):
    url = f"{V}/servers/{server.uuid}/diagnostics"
    assert api_as(admin).get(url).status_code == 409  # nothing reported yet
    reported(server, stats(str(server.uuid), 1.0), start=time.time() - 3600)
    assert "no recent statistics" in api_as(admin).get(url).json()["conflictingRequest"]["message"]
    # A sample from the host the server was on before a move does not answer for it either.
    reported(server, stats(str(server.uuid), 1.0), host="compute2")
    assert api_as(admin).get(url).status_code == 409
