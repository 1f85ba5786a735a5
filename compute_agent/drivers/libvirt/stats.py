"""Guests' counters (CPU time, memory, disks, NICs) from libvirt, for the statistics report.

One bulk call (virConnectGetAllDomainStats) reads every running guest at once, which is what keeps
the report cheap on a host with hundreds of guests. Libvirt's test driver answers that call with
the state group only (libvirt 9–12), so when a guest's record has no CPU time the driver asks
that guest the older per-domain questions instead (info, blockStats, interfaceStats), which the
test driver answers with counters that grow with the clock.

The conversions are plain functions over libvirt's flat dictionaries, so they are tested without a
hypervisor (tests/unit/compute_agent/drivers/test_stats.py).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import libvirt

from compute_agent import messages as msg
from compute_agent.drivers.libvirt.connection import LibvirtBase
from compute_agent.drivers.libvirt.host import _is_instance_domain_name
from compute_agent.drivers.libvirt.states import power_state_from_libvirt

STATS_GROUPS = (
    libvirt.VIR_DOMAIN_STATS_STATE
    | libvirt.VIR_DOMAIN_STATS_CPU_TOTAL
    | libvirt.VIR_DOMAIN_STATS_BALLOON
    | libvirt.VIR_DOMAIN_STATS_VCPU
    | libvirt.VIR_DOMAIN_STATS_INTERFACE
    | libvirt.VIR_DOMAIN_STATS_BLOCK
)


@dataclass
class Devices:
    """What a guest's definition says of its devices and the stats do not: NICs' MACs."""

    disks: list[str] = field(default_factory=list)  # target devs
    nics: list[tuple[str, str]] = field(default_factory=list)  # (target dev or "", MAC)

    @property
    def macs(self) -> dict[str, str]:
        return {dev: mac for dev, mac in self.nics if dev}


def devices_of(domain_xml: str) -> Devices:
    root = ET.fromstring(domain_xml)
    devices = Devices()
    for disk in root.findall("./devices/disk"):
        target = disk.find("target")
        if target is not None and target.get("dev"):
            devices.disks.append(target.get("dev", ""))
    for nic in root.findall("./devices/interface"):
        target, mac = nic.find("target"), nic.find("mac")
        devices.nics.append(((target.get("dev", "") if target is not None else ""),
                             (mac.get("address", "") if mac is not None else "")))
    return devices


def _int(record: Mapping[str, Any], key: str, default: int = 0) -> int:
    value = record.get(key, default)
    return int(value) if value is not None else default


def _maybe(record: Mapping[str, Any], key: str) -> int | None:
    return int(record[key]) if key in record else None


def has_counters(record: Mapping[str, Any]) -> bool:
    """Whether the bulk record carries the guest's counters (not only its state)."""
    return "cpu.time" in record


def from_bulk_record(uuid: str, record: Mapping[str, Any], macs: Mapping[str, str]) -> msg.GuestStats:
    """A GuestStats from one record of virConnectGetAllDomainStats (keys as libvirt documents
    them: "cpu.time", "balloon.current", "block.<n>.rd.bytes", "net.<n>.tx.pkts"…). `macs` maps
    a NIC's host device to its MAC (the definition's; the stats do not carry it)."""
    vcpus = _int(record, "vcpu.current")
    disks = []
    for i in range(_int(record, "block.count")):
        p = f"block.{i}."
        if p + "name" not in record:
            continue
        disks.append(msg.DiskStats(
            name=str(record[p + "name"]),
            read_bytes=_int(record, p + "rd.bytes"), read_requests=_int(record, p + "rd.reqs"),
            write_bytes=_int(record, p + "wr.bytes"), write_requests=_int(record, p + "wr.reqs"),
            errors=_maybe(record, p + "errors"),
        ))
    nics = []
    for i in range(_int(record, "net.count")):
        p = f"net.{i}."
        if p + "name" not in record:
            continue  # a NIC without a host device (user-mode) is counted by nobody
        name = str(record[p + "name"])
        nics.append(msg.NicStats(
            name=name, mac_address=macs.get(name, ""),
            rx_bytes=_int(record, p + "rx.bytes"), rx_packets=_int(record, p + "rx.pkts"),
            rx_errors=_int(record, p + "rx.errs"), rx_drops=_int(record, p + "rx.drop"),
            tx_bytes=_int(record, p + "tx.bytes"), tx_packets=_int(record, p + "tx.pkts"),
            tx_errors=_int(record, p + "tx.errs"), tx_drops=_int(record, p + "tx.drop"),
        ))
    return msg.GuestStats(
        uuid=uuid,
        power_state=power_state_from_libvirt(_int(record, "state.state"),
                                              _int(record, "state.reason")),
        cpu_time_ns=_int(record, "cpu.time"),
        vcpus=vcpus,
        vcpu_times_ns=[_int(record, f"vcpu.{i}.time") for i in range(vcpus)
                       if f"vcpu.{i}.time" in record],
        memory_max_kib=_int(record, "balloon.maximum"),
        memory_kib=_int(record, "balloon.current"),
        memory_rss_kib=_maybe(record, "balloon.rss"),
        memory_unused_kib=_maybe(record, "balloon.unused"),
        memory_usable_kib=_maybe(record, "balloon.usable"),
        disks=disks,
        nics=nics,
    )


def from_domain_calls(
    uuid: str,
    info: Sequence[int],
    block: Mapping[str, Sequence[int]],
    interfaces: Sequence[tuple[str, str, Sequence[int]]],
    *,
    reason: int = 0,
) -> msg.GuestStats:
    """A GuestStats from the per-domain calls: `info` as virDomainGetInfo gives it (state, max
    memory KiB, memory KiB, vCPUs, CPU time ns), `block` blockStats by device (rd_req, rd_bytes,
    wr_req, wr_bytes, errs), `interfaces` (device, MAC, interfaceStats: rx_bytes, rx_packets,
    rx_errs, rx_drop, tx_bytes, tx_packets, tx_errs, tx_drop)."""
    state, max_kib, kib, vcpus, cpu_time = (int(v) for v in info[:5])
    return msg.GuestStats(
        uuid=uuid,
        power_state=power_state_from_libvirt(state, reason),
        cpu_time_ns=cpu_time,
        vcpus=vcpus,
        memory_max_kib=max_kib,
        memory_kib=kib,
        disks=[
            msg.DiskStats(name=dev, read_requests=int(s[0]), read_bytes=int(s[1]),
                          write_requests=int(s[2]), write_bytes=int(s[3]),
                          errors=int(s[4]) if int(s[4]) >= 0 else None)
            for dev, s in block.items()
        ],
        nics=[
            msg.NicStats(name=dev, mac_address=mac,
                         rx_bytes=int(s[0]), rx_packets=int(s[1]), rx_errors=int(s[2]),
                         rx_drops=int(s[3]), tx_bytes=int(s[4]), tx_packets=int(s[5]),
                         tx_errors=int(s[6]), tx_drops=int(s[7]))
            for dev, mac, s in interfaces
        ],
    )


class StatsMixin(LibvirtBase):
    # The devices of each guest seen, read from its definition only when its stats name a NIC the
    # last reading did not know (a port plugged in), so a steady host parses no XML.
    _stats_devices: dict[str, Devices]

    def guest_stats(self) -> list[msg.GuestStats]:
        def collect(conn: libvirt.virConnect) -> list[msg.GuestStats]:
            devices = getattr(self, "_stats_devices", {})
            found: dict[str, msg.GuestStats] = {}
            # NOWAIT: a guest whose domain has a job that admits no query (an incoming live
            # migration's, for as long as the copy lasts) gives what it can without one, rather
            # than have this call wait for the job, up to libvirt's 30 s, under the connection
            # lock that the heartbeat and every task need too.
            records = conn.getAllDomainStats(
                STATS_GROUPS, libvirt.VIR_CONNECT_GET_ALL_DOMAINS_STATS_ACTIVE
                | libvirt.VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT)
            for domain, record in records:
                name = domain.name()
                if not _is_instance_domain_name(name):
                    continue
                try:
                    found[name] = self._guest_stats_of(domain, name, record, devices)
                except libvirt.libvirtError as exc:
                    if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                        raise  # gone while we read it: left out, as from the next report
            # Forget the devices of guests that no longer run here.
            self._stats_devices = {uuid: d for uuid, d in devices.items() if uuid in found}
            return [found[uuid] for uuid in sorted(found)]

        return self._call("reading guest statistics", collect)

    def _guest_stats_of(self, domain: libvirt.virDomain, uuid: str, record: Mapping[str, Any],
                        devices: dict[str, Devices]) -> msg.GuestStats:
        if has_counters(record):
            known = devices.get(uuid)
            names = {str(record[f"net.{i}.name"]) for i in range(_int(record, "net.count"))
                     if f"net.{i}.name" in record}
            if known is None or not names <= set(known.macs):
                known = devices[uuid] = devices_of(domain.XMLDesc(0))
            return from_bulk_record(uuid, record, known.macs)
        # The test driver: its bulk record holds the state only.
        seen = devices[uuid] = devices_of(domain.XMLDesc(0))
        return from_domain_calls(
            uuid, domain.info(),
            {dev: domain.blockStats(dev) for dev in seen.disks},
            [(dev, mac, domain.interfaceStats(dev)) for dev, mac in seen.nics if dev],
            reason=_int(record, "state.reason"),
        )
