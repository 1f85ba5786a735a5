from __future__ import annotations

from cloud.scheduler.host_state import HostState, RequestSpec


class RequestedDestinationFilter:
    """For a boot an admin pointed at a host and/or node (2.74's host and hypervisor_hostname, or
    "zone:host:node"): passes only that host (and node). Other requests pass. It runs even when
    the destination is forced and every other filter is skipped."""

    runs_when_forced = True

    def host_passes(self, host: HostState, spec: RequestSpec) -> bool:
        if spec.requested_host and host.host != spec.requested_host:
            return False
        return not spec.requested_node or host.node == spec.requested_node

    def reason(self, host: HostState, spec: RequestSpec) -> str:
        if spec.requested_host and host.host != spec.requested_host:
            return f"Destination: {spec.requested_host} was asked for"
        return f"Destination: node {spec.requested_node} was asked for, this is {host.node}"
