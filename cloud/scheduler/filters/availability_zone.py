from __future__ import annotations

from cloud.scheduler.host_state import HostState, RequestSpec


class AvailabilityZoneFilter:
    """Passes every host when the request names no zone; otherwise only a host whose zone (that of
    the zoned aggregate holding it, or the default zone "nova") is the requested one."""

    def host_passes(self, host: HostState, spec: RequestSpec) -> bool:
        if not spec.availability_zone:
            return True
        return host.availability_zone == spec.availability_zone

    def reason(self, host: HostState, spec: RequestSpec) -> str:
        return f"Zone: in {host.availability_zone}, not {spec.availability_zone}"
