"""GET /servers/{id}/diagnostics (os-server-diagnostics, admin by default): what the hypervisor
counts of a running guest, answered from the statistics its host sends every few seconds
(cloud/compute/guest_stats.py) rather than by asking the host while the client waits.

Two shapes, as Nova's libvirt driver gives them: below 2.48 a flat dictionary of libvirt's own
names (cpu0_time, vda_read, <tap>_rx, memory…); from 2.48 the standard object (cpu_details,
disk_details, nic_details, memory_details…). 409 unless the server is ACTIVE and its host has
reported it recently."""

from __future__ import annotations

from typing import Any

from django.urls import path
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.response import Response

from cloud.compute import guest_stats
from compute_agent import messages as msg

from ..base import ComputeView

RULE = "compute:server_diagnostics"

# Nova's power_state names (nova.compute.power_state.STATE_MAP); the agent's nostate is "pending".
_STATES = {msg.POWER_NOSTATE: "pending", msg.POWER_RUNNING: "running",
           msg.POWER_PAUSED: "paused", msg.POWER_SHUTDOWN: "shutdown",
           msg.POWER_CRASHED: "crashed", msg.POWER_SUSPENDED: "suspended"}


class ServerDiagnostics(ComputeView):
    def get(self, request: Request, server_id: str) -> Response:
        instance = self.authorized_server(server_id, RULE)
        found = guest_stats.diagnostics(instance)
        if self.version.at_least("2.48"):
            return Response(standard_body(found))
        return Response(libvirt_body(found.current.stats))


def libvirt_body(stats: msg.GuestStats) -> dict[str, Any]:
    """Before 2.48: Nova's libvirt driver's own keys."""
    body: dict[str, Any] = {}
    if stats.vcpu_times_ns:
        for i, ns in enumerate(stats.vcpu_times_ns):
            body[f"cpu{i}_time"] = ns
    else:
        body["cpu_time"] = stats.cpu_time_ns  # the hypervisor counts the vCPUs together only
    for disk in stats.disks:
        body[f"{disk.name}_read_req"] = disk.read_requests
        body[f"{disk.name}_read"] = disk.read_bytes
        body[f"{disk.name}_write_req"] = disk.write_requests
        body[f"{disk.name}_write"] = disk.write_bytes
        body[f"{disk.name}_errors"] = -1 if disk.errors is None else disk.errors
    body["memory"] = stats.memory_max_kib
    body["memory-actual"] = stats.memory_kib
    if stats.memory_rss_kib is not None:
        body["memory-rss"] = stats.memory_rss_kib
    if stats.memory_unused_kib is not None:
        body["memory-unused"] = stats.memory_unused_kib
    if stats.memory_usable_kib is not None:
        body["memory-usable"] = stats.memory_usable_kib
    for nic in stats.nics:
        body[f"{nic.name}_rx"] = nic.rx_bytes
        body[f"{nic.name}_rx_packets"] = nic.rx_packets
        body[f"{nic.name}_rx_errors"] = nic.rx_errors
        body[f"{nic.name}_rx_drop"] = nic.rx_drops
        body[f"{nic.name}_tx"] = nic.tx_bytes
        body[f"{nic.name}_tx_packets"] = nic.tx_packets
        body[f"{nic.name}_tx_errors"] = nic.tx_errors
        body[f"{nic.name}_tx_drop"] = nic.tx_drops
    return body


def _percent(before: int, after: int, seconds: float | None, cpus: int = 1) -> int | None:
    if seconds is None or seconds <= 0 or after < before or cpus <= 0:
        return None
    return min(100, round((after - before) / 1e9 / seconds / cpus * 100))


def _rate(before: int | None, after: int, seconds: float | None) -> int | None:
    if seconds is None or seconds <= 0 or before is None or after < before:
        return None
    return round((after - before) / seconds)


def _cpu_details(found: guest_stats.Diagnostics) -> list[dict[str, Any]]:
    now = found.current.stats
    before = found.previous.stats if found.previous is not None else None
    seconds = found.seconds
    if now.vcpu_times_ns:
        old = before.vcpu_times_ns if before is not None else []
        return [
            {"id": i, "time": ns,
             "utilisation": _percent(old[i], ns, seconds) if i < len(old) else None}
            for i, ns in enumerate(now.vcpu_times_ns)
        ]
    # Only the total is known (libvirt's test driver): one entry for every vCPU together, which
    # the schema allows by its null id.
    return [{"id": None, "time": now.cpu_time_ns,
             "utilisation": None if before is None else _percent(
                 before.cpu_time_ns, now.cpu_time_ns, seconds, now.vcpus)}]


def standard_body(found: guest_stats.Diagnostics) -> dict[str, Any]:
    """2.48 and later: the same object for every driver (Nova's ServerDiagnostics view)."""
    stats = found.current.stats
    before = found.previous.stats if found.previous is not None else None
    seconds = found.seconds
    old_nics = {n.mac_address or n.name: n for n in before.nics} if before is not None else {}
    launched = found.instance.launched_at
    nics = []
    for nic in stats.nics:
        old = old_nics.get(nic.mac_address or nic.name)
        nics.append({
            "mac_address": nic.mac_address or None,
            "rx_octets": nic.rx_bytes, "rx_errors": nic.rx_errors, "rx_drop": nic.rx_drops,
            "rx_packets": nic.rx_packets,
            "rx_rate": _rate(old.rx_bytes if old else None, nic.rx_bytes, seconds),
            "tx_octets": nic.tx_bytes, "tx_errors": nic.tx_errors, "tx_drop": nic.tx_drops,
            "tx_packets": nic.tx_packets,
            "tx_rate": _rate(old.tx_bytes if old else None, nic.tx_bytes, seconds),
        })
    return {
        "state": _STATES.get(stats.power_state, "pending"),
        "driver": "libvirt",
        "hypervisor": found.hypervisor_type.lower() or None,
        "hypervisor_os": "linux",
        "uptime": int((timezone.now() - launched).total_seconds()) if launched else None,
        "config_drive": bool(found.instance.config_drive),
        "num_cpus": stats.vcpus,
        "num_disks": len(stats.disks),
        "num_nics": len(stats.nics),
        "memory_details": {"maximum": stats.memory_max_kib // 1024,
                           "used": found.current.memory_used_kib // 1024},
        "cpu_details": _cpu_details(found),
        "disk_details": [
            {"read_bytes": d.read_bytes, "read_requests": d.read_requests,
             "write_bytes": d.write_bytes, "write_requests": d.write_requests,
             "errors_count": d.errors}
            for d in stats.disks
        ],
        "nic_details": nics,
    }


urlpatterns = [path("/servers/<str:server_id>/diagnostics", ServerDiagnostics.as_view())]
