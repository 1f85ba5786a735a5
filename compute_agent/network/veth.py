"""Giving a container's veth the name of its port's tap, so that it is treated as a VM's tap is.

Every rule of the data plane finds a guest's NIC by its port's tap name (`tap<port11>`):
security groups and anti-spoofing (physdev and ebtables matches, compute_agent.network.secgroups)
and the removal of a port's leftovers. A VM's tap is created with that name (the domain's
<target dev>); a container's host-side veth is named by libvirt's LXC driver, which takes the
<target dev> the definition asks for but falls back to a name of its own (vnetN) where it does
not. The agent then renames the veth after the start (compute_agent.drivers.libvirt.containers),
in the host's network namespace: down, renamed, back in its bridge, up; again when the container
starts anew without the agent (its init rebooted it: compute_agent.drivers.libvirt.events). Until
it is renamed no rule of its port names it, and the host's rules drop everything of a vnetN veth
(fail closed: compute_agent.network.secgroups). libvirt 9.0's LXC driver (Debian 12) takes the
<target dev> it is given, at the first start and when it restarts the container, so there the
renaming finds nothing to do.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from .base import NetworkError
from .runner import Runner

LOG = logging.getLogger(__name__)

# Interface names are at most 15 bytes (IFNAMSIZ less the NUL).
_MAX_NAME = 15


def _links(runner: Runner) -> dict[str, dict[str, Any]]:
    """The host's links by name, as `ip -j -d link show` gives them (details: their kind)."""
    out = runner.run(["ip", "-j", "-d", "link", "show"])
    try:
        found = json.loads(out or "[]")
    except ValueError as exc:
        raise NetworkError(f"ip -j link show: not JSON ({exc})") from exc
    return {link["ifname"]: link for link in found if isinstance(link, dict) and "ifname" in link}


def _kind(link: dict[str, Any]) -> str:
    return str((link.get("linkinfo") or {}).get("info_kind", ""))


def adopt(runner: Runner, current: str, wanted: str, bridge: str) -> bool:
    """Make the veth `current` (a container's host end) be `wanted`, up, in `bridge`.

    True when something had to change. A veth already named `wanted` (renamed before, by an
    agent that was then restarted) is only checked. Anything else is a NetworkError: `current`
    missing or not a veth (never rename a device that is not a container's), or `wanted` taken
    by another device (a tap a dead guest left would take the port's traffic and rules).
    """
    for name in (current, wanted, bridge):
        if not name or len(name) > _MAX_NAME or "/" in name or name != name.strip():
            raise NetworkError(f"{name!r} is not an interface name")
    links = _links(runner)
    changed = False
    if current != wanted:
        if wanted in links:
            if current in links:
                raise NetworkError(f"cannot name {current} {wanted}: another {wanted} exists")
            # Renamed already; libvirt still reports the name it gave.
            current = wanted
        elif current not in links:
            raise NetworkError(f"no device {current} to name {wanted}")
    link = links[current]
    if _kind(link) != "veth":
        raise NetworkError(f"{current} is a {_kind(link) or 'device'} of no container, not a veth")
    if current != wanted:
        LOG.info("naming the container veth %s %s (in %s)", current, wanted, bridge)
        runner.run(["ip", "link", "set", "dev", current, "down"])
        runner.run(["ip", "link", "set", "dev", current, "name", wanted])
        changed = True
    if link.get("master") != bridge:
        runner.run(["ip", "link", "set", "dev", wanted, "master", bridge])
        changed = True
    if changed or "UP" not in link.get("flags", []):
        runner.run(["ip", "link", "set", "dev", wanted, "up"])
        changed = True
    return changed
