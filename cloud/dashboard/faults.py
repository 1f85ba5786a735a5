"""A failed instance's fault, told in words a person can act on.

The scheduler's no-valid-host fault carries, per filter, how many hosts it removed (the message
every member sees; the details with host names are for admins). Each filter's name becomes the
reason it stands for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from cloud.compute.models import InstanceFault

REASONS = {
    "ComputeEnabledFilter": "the compute service is disabled",
    "ComputeAliveFilter": "the compute service is down",
    "RetryFilter": "the build already failed there",
    "AvailabilityZoneFilter": "not in the requested availability zone",
    "RamFilter": "not enough free memory",
    "VcpuFilter": "not enough free vCPUs",
    "DiskFilter": "not enough free disk",
    "ServerGroupAffinityFilter": "the server group wants its servers together on another host",
    "ServerGroupAntiAffinityFilter": "a server of the same anti-affinity group is already there",
}
_REMOVED = re.compile(r"^(?P<filter>\w+) removed (?P<count>\d+) of (?P<total>\d+) hosts?$")


@dataclass
class FaultStory:
    headline: str
    reasons: list[str] = field(default_factory=list)
    details: str = ""  # for admins only


def explain(fault: InstanceFault | None, *, is_admin: bool) -> FaultStory | None:
    if fault is None:
        return None
    message = fault.message or "The operation failed."
    headline, reasons = message, []
    match = re.match(r"^(?P<head>.*?)\s*\((?P<inner>[^()]*)\)\s*$", message)
    if match:
        headline = match["head"]
        for part in match["inner"].split(";"):
            part = part.strip()
            removed = _REMOVED.match(part)
            if removed:
                why = REASONS.get(removed["filter"], removed["filter"])
                count, total = int(removed["count"]), int(removed["total"])
                hosts = "host" if total == 1 else "hosts"
                reasons.append(f"{count} of {total} {hosts}: {why} ({removed['filter']})")
            elif part:
                reasons.append(part)
    return FaultStory(
        headline=headline,
        reasons=reasons,
        details=fault.details if is_admin else "",
    )
