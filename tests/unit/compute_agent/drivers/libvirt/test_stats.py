"""Guests' counters from libvirt: the bulk record as qemu:///system gives it (captured from a real
guest on this platform's libvirt 9.0 / QEMU 7.2, with a tap NIC added as libvirt names its keys),
the per-domain calls the test driver needs, and the real test driver underneath."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import libvirt

from compute_agent import messages as msg
from compute_agent.drivers.libvirt import LibvirtDriver
from compute_agent.drivers.libvirt.stats import (
    devices_of,
    from_bulk_record,
    from_domain_calls,
    has_counters,
)

# One domainListGetStats record of a running qemu guest (trimmed of groups we do not read).
QEMU_RECORD = {
    "state.state": 1, "state.reason": 1,
    "cpu.time": 374429000, "cpu.user": 222045000, "cpu.system": 152384000,
    "balloon.current": 65536, "balloon.maximum": 131072, "balloon.last-update": 0,
    "balloon.rss": 46160,
    "vcpu.current": 2, "vcpu.maximum": 2,
    "vcpu.0.state": 1, "vcpu.0.time": 110000000, "vcpu.0.wait": 0,
    "vcpu.1.state": 1, "vcpu.1.time": 90000000, "vcpu.1.wait": 0,
    "net.count": 2,  # the first is a user-mode NIC: counted, but no keys of its own
    "net.1.name": "tap1a2b3c4d-5e", "net.1.rx.bytes": 4200, "net.1.rx.pkts": 42,
    "net.1.rx.errs": 1, "net.1.rx.drop": 2, "net.1.tx.bytes": 900, "net.1.tx.pkts": 9,
    "net.1.tx.errs": 3, "net.1.tx.drop": 4,
    "block.count": 1, "block.0.name": "vda", "block.0.path": "/var/lib/kumo/x/disk",
    "block.0.rd.reqs": 7, "block.0.rd.bytes": 3584, "block.0.rd.times": 52109,
    "block.0.wr.reqs": 5, "block.0.wr.bytes": 2048, "block.0.wr.times": 0,
    "block.0.capacity": 10485760, "block.0.physical": 204800,
}

# What libvirt 9.0's test driver answers for the same call: the state, nothing else.
TEST_DRIVER_RECORD = {"state.state": 1, "state.reason": 1}


def test_a_qemu_record_becomes_cpu_memory_disk_and_nic_counters() -> None:
    stats = from_bulk_record("u-1", QEMU_RECORD, {"tap1a2b3c4d-5e": "fa:16:3e:00:00:01"})
    assert (stats.uuid, stats.power_state) == ("u-1", msg.POWER_RUNNING)
    assert (stats.cpu_time_ns, stats.vcpus, stats.vcpu_times_ns) == (374429000, 2,
                                                                     [110000000, 90000000])
    assert (stats.memory_max_kib, stats.memory_kib, stats.memory_rss_kib) == (131072, 65536,
                                                                              46160)
    assert stats.memory_unused_kib is None and stats.memory_usable_kib is None
    assert stats.disks == [msg.DiskStats(name="vda", read_bytes=3584, read_requests=7,
                                         write_bytes=2048, write_requests=5, errors=None)]
    assert stats.nics == [msg.NicStats(
        name="tap1a2b3c4d-5e", mac_address="fa:16:3e:00:00:01", rx_bytes=4200, rx_packets=42,
        rx_errors=1, rx_drops=2, tx_bytes=900, tx_packets=9, tx_errors=3, tx_drops=4)]


def test_a_guest_with_balloon_statistics_reports_its_own_view_of_memory() -> None:
    record = {**QEMU_RECORD, "balloon.unused": 30000, "balloon.usable": 28000}
    stats = from_bulk_record("u-1", record, {})
    assert (stats.memory_unused_kib, stats.memory_usable_kib) == (30000, 28000)


def test_a_crashed_guest_is_told_apart_from_one_shut_down() -> None:
    record = {"state.state": libvirt.VIR_DOMAIN_SHUTOFF,
              "state.reason": libvirt.VIR_DOMAIN_SHUTOFF_CRASHED, "cpu.time": 1}
    assert from_bulk_record("u", record, {}).power_state == msg.POWER_CRASHED


def test_the_test_driver_s_record_has_no_counters_and_the_domain_calls_fill_them() -> None:
    assert has_counters(QEMU_RECORD) and not has_counters(TEST_DRIVER_RECORD)
    stats = from_domain_calls(
        "u-2", [1, 131072, 65536, 2, 5_000_000_000],
        {"vda": (7, 3584, 5, 2048, -1)},
        [("testnet0", "fa:16:3e:00:00:02", (4200, 42, 1, 2, 900, 9, 3, 4))],
    )
    assert (stats.power_state, stats.cpu_time_ns, stats.vcpus) == (msg.POWER_RUNNING,
                                                                   5_000_000_000, 2)
    assert (stats.memory_max_kib, stats.memory_kib, stats.vcpu_times_ns) == (131072, 65536, [])
    assert stats.disks[0] == msg.DiskStats(name="vda", read_requests=7, read_bytes=3584,
                                           write_requests=5, write_bytes=2048, errors=None)
    assert (stats.nics[0].mac_address, stats.nics[0].rx_bytes, stats.nics[0].tx_drops) == (
        "fa:16:3e:00:00:02", 4200, 4)


def test_devices_are_read_from_the_definition() -> None:
    xml = """<domain><devices>
      <disk><target dev='vda'/></disk><disk device='cdrom'><target dev='hdd'/></disk>
      <interface type='user'><mac address='fa:16:3e:00:00:01'/></interface>
      <interface type='bridge'><target dev='tapabc'/><mac address='fa:16:3e:00:00:02'/></interface>
    </devices></domain>"""
    devices = devices_of(xml)
    assert devices.disks == ["vda", "hdd"]
    assert devices.nics == [("", "fa:16:3e:00:00:01"), ("tapabc", "fa:16:3e:00:00:02")]
    assert devices.macs == {"tapabc": "fa:16:3e:00:00:02"}


def test_the_report_survives_the_contract_round_trip() -> None:
    report = msg.GuestStatsReport(host="h", collected_at=1.5, interval=10.0,
                                  guests=[from_bulk_record("u", QEMU_RECORD, {})])
    assert msg.GuestStatsReport.from_dict(report.to_dict()) == report


def test_running_guests_on_the_test_driver_report_counters_that_grow(
    driver: LibvirtDriver, spawn_request: Callable[..., msg.SpawnRequest],
    raw_conn: libvirt.virConnect,
) -> None:
    running = spawn_request(vcpus=2, memory_mb=256)
    stopped = spawn_request()
    driver.spawn(running)
    driver.spawn(stopped)
    driver.stop(stopped.instance_uuid, 0)
    # A domain not named by a uuid (the test driver's own "test") is not ours to report.
    assert any(d.name() == "test" for d in raw_conn.listAllDomains(0))

    first = {s.uuid: s for s in driver.guest_stats()}
    time.sleep(0.05)
    second = {s.uuid: s for s in driver.guest_stats()}

    assert set(first) == set(second) == {running.instance_uuid}
    before, after = first[running.instance_uuid], second[running.instance_uuid]
    assert (after.vcpus, after.memory_max_kib, after.power_state) == (2, 256 * 1024,
                                                                      msg.POWER_RUNNING)
    assert after.cpu_time_ns > before.cpu_time_ns > 0
    assert uuid.UUID(after.uuid)


def test_the_report_s_fast_encoding_is_the_generic_one() -> None:
    import dataclasses

    guests = [from_bulk_record("u", QEMU_RECORD, {"tap1a2b3c4d-5e": "fa:16:3e:00:00:01"}),
              from_domain_calls("v", [1, 1, 1, 1, 1], {}, [])]
    report = msg.GuestStatsReport(host="h", collected_at=1.5, interval=10.0, guests=guests)
    generic = {**dataclasses.asdict(report), "contract_version": msg.CONTRACT_VERSION}
    assert report.to_dict() == generic
    newer = {**generic, "future": 1}
    newer["guests"] = [{**g, "future": 2} for g in generic["guests"]]
    newer["guests"][0]["disks"] = [{**generic["guests"][0]["disks"][0], "future": 3}]
    assert msg.GuestStatsReport.from_dict(newer) == report  # what it does not know, it ignores
