"""Fencing: making sure a silent compute host is really off before its guests start elsewhere.

A host whose heartbeats stopped may be dead, or only cut off from the control plane with its guests
still running; a copy started elsewhere would then clash with them on MAC and IP, and two guests
would write their data as one. So nothing of a silent host is recovered until a fencing driver
confirms it is off (cloud/conductor/host_watch.py asks). One interface, one driver per way of
knowing:

    manual      an operator confirms: `openstack compute service set --down HOST nova-compute`
                (forced_down, Nova's convention for "this host is fenced") or the dashboard's button
    command     a power-off command, from a template (IPMI, Redfish…); its exit status decides
    simulated   the simulated hosts of this machine (`python -m simhosts fence`): kills every
                process of the host's namespaces and cuts its links
    fake        tests: answers what it is told, counts its calls

`KUMO_FENCING_DRIVER` names the default, `KUMO_FENCING_HOSTS` (JSON) gives a host its own driver
and the values its command template uses, e.g. {"compute-1": {"driver": "command", "bmc":
"10.0.0.5"}}. A template is split like a shell line, then each word formatted with {host} and the
host's values; no shell runs it, and the command line is never logged (it may hold a password).
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field

from django.conf import settings

log = logging.getLogger(__name__)

CONFIRMED = "confirmed"  # the host is off
FAILED = "failed"  # the driver could not make sure: try again later
WAITING = "waiting"  # a person has to confirm it


@dataclass(frozen=True)
class FenceResult:
    outcome: str
    message: str


class FencingDriver:
    """Make sure `host` is off; the answer says whether it is."""

    name = ""

    def fence(self, host: str) -> FenceResult:
        raise NotImplementedError


class ManualFencer(FencingDriver):
    name = "manual"

    def fence(self, host: str) -> FenceResult:
        return FenceResult(WAITING, (
            f"Waiting for an operator to confirm that {host} is powered off: "
            f"`openstack compute service set --down {host} nova-compute`, or Confirm on the "
            "dashboard's Hosts page. Nothing is evacuated until then."))


class CommandFencer(FencingDriver):
    """Runs a power-off command; exit status 0 confirms. With a verify template, the host counts
    as off only when that command also exits 0 (a BMC's "power status" that says off)."""

    name = "command"

    def __init__(self, template: str, *, verify: str = "", values: Mapping[str, str] | None = None,
                 timeout: float | None = None) -> None:
        self.template = template
        self.verify = verify
        self.values = dict(values or {})
        self.timeout = timeout if timeout is not None else settings.KUMO_FENCE_TIMEOUT

    def argv(self, template: str, host: str) -> list[str]:
        values = {**self.values, "host": host, "python": sys.executable}
        return [word.format(**values) for word in shlex.split(template)]

    def fence(self, host: str) -> FenceResult:
        if not self.template:
            return FenceResult(FAILED, "No fencing command is configured (KUMO_FENCE_COMMAND).")
        for what, template in (("power-off", self.template), ("verify", self.verify)):
            if not template:
                continue
            try:
                done = subprocess.run(self.argv(template, host), capture_output=True, text=True,
                                      timeout=self.timeout, check=False)
            except subprocess.TimeoutExpired:
                return FenceResult(FAILED, f"The {what} command for {host} did not finish in "
                                           f"{self.timeout:g} s.")
            except (OSError, KeyError, ValueError) as exc:
                return FenceResult(FAILED, f"The {what} command for {host} could not run "
                                           f"({type(exc).__name__}).")
            if done.returncode != 0:
                # The exit status only: what such tools print may echo their credentials, and
                # this message is shown on the dashboard and in the API.
                return FenceResult(FAILED, f"The {what} command for {host} failed (exit "
                                           f"{done.returncode}).")
        return FenceResult(CONFIRMED, f"{host} was powered off by its fencing command.")


class SimulatedHostFencer(CommandFencer):
    name = "simulated"

    def __init__(self, tag: str | None = None) -> None:
        tag = tag or os.environ.get("KUMO_SIMHOSTS_TAG", "run")
        super().__init__("{python} -m simhosts --tag {tag} fence {host}", values={"tag": tag})

    def fence(self, host: str) -> FenceResult:
        result = super().fence(host)
        if result.outcome == CONFIRMED:
            return FenceResult(CONFIRMED, f"{host}'s processes were killed and its links cut.")
        return result


@dataclass
class FakeFencer(FencingDriver):
    """For tests: answers `outcomes` in turn (the last one for ever), or raises `error`."""

    name = "fake"
    outcomes: list[str] = field(default_factory=lambda: [CONFIRMED])
    calls: list[str] = field(default_factory=list)

    def fence(self, host: str) -> FenceResult:
        self.calls.append(host)
        outcome = self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]
        return FenceResult(outcome, f"fake fence of {host}: {outcome}")


# Tests put their FakeFencer here, to be handed out for the "fake" driver.
FAKE = FakeFencer()


def host_options(host: str) -> dict[str, str]:
    return dict(settings.KUMO_FENCING_HOSTS.get(host) or {})


def driver_for(host: str) -> FencingDriver:
    """The fencing driver of `host`: its own from KUMO_FENCING_HOSTS, else the default."""
    options = host_options(host)
    name = options.pop("driver", "") or settings.KUMO_FENCING_DRIVER
    if name == "command":
        return CommandFencer(settings.KUMO_FENCE_COMMAND, verify=settings.KUMO_FENCE_VERIFY_COMMAND,
                             values=options)
    if name == "simulated":
        return SimulatedHostFencer(options.get("tag"))
    if name == "fake":
        return FAKE
    if name != "manual":
        log.error("unknown fencing driver %r for %s: asking a person instead", name, host)
    return ManualFencer()
