"""Every running guest's counters for /metrics, read at scrape time from the statistics its host
sent last (cloud/compute/guest_stats.py): CPU seconds, memory, disk and network bytes, labelled by
instance uuid and host. Registered in ComputeConfig.ready() under the collector name "guests".

Counters are libvirt's, cumulative since the guest's qemu started; a restart or a move starts them
again from zero, which Prometheus' rate() reads as a counter reset. A guest whose host has not
reported it recently (stopped, deleted, host silent) is left out rather than shown frozen.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from . import guest_stats

_KIB = 1024
LABELS = ["instance", "host"]


def collect() -> Iterator[Metric]:
    cpu = CounterMetricFamily(
        "kumo_guest_cpu_seconds", "CPU time a guest used (every vCPU and its qemu), since its "
        "qemu started.", labels=LABELS)
    vcpus = GaugeMetricFamily("kumo_guest_vcpus", "A guest's vCPUs.", labels=LABELS)
    memory = GaugeMetricFamily(
        "kumo_guest_memory_bytes", "A guest's memory: maximum (what it may have), current (its "
        "balloon's size now), used (its own count, else what its qemu holds on the host).",
        labels=[*LABELS, "kind"])
    disk_read = CounterMetricFamily(
        "kumo_guest_disk_read_bytes", "Bytes a guest read from its disks.", labels=LABELS)
    disk_write = CounterMetricFamily(
        "kumo_guest_disk_write_bytes", "Bytes a guest wrote to its disks.", labels=LABELS)
    net_rx = CounterMetricFamily(
        "kumo_guest_network_receive_bytes", "Bytes a guest received on its NICs.",
        labels=LABELS)
    net_tx = CounterMetricFamily(
        "kumo_guest_network_transmit_bytes", "Bytes a guest sent on its NICs.", labels=LABELS)
    now = time.time()
    for uuid, sample in sorted(guest_stats.latest(guest_stats.keys_scan()).items()):
        if not sample.fresh(now):
            continue
        s, labels = sample.stats, [uuid, sample.host]
        cpu.add_metric(labels, s.cpu_time_ns / 1e9)
        vcpus.add_metric(labels, s.vcpus)
        memory.add_metric([*labels, "maximum"], s.memory_max_kib * _KIB)
        memory.add_metric([*labels, "current"], s.memory_kib * _KIB)
        memory.add_metric([*labels, "used"], sample.memory_used_kib * _KIB)
        disk_read.add_metric(labels, sum(d.read_bytes for d in s.disks))
        disk_write.add_metric(labels, sum(d.write_bytes for d in s.disks))
        net_rx.add_metric(labels, sum(n.rx_bytes for n in s.nics))
        net_tx.add_metric(labels, sum(n.tx_bytes for n in s.nics))
    yield from (cpu, vcpus, memory, disk_read, disk_write, net_rx, net_tx)
