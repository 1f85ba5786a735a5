"""Running the data plane's commands (ip, bridge, iptables, dnsmasq…) in the host's network
namespace.

The agent itself stays in the machine's network namespace, where the broker and the API are; a
simulated host's bridges, taps and rules live in the host's namespace (`--netns`), so each
command enters it with nsenter. On a real machine there is no namespace and commands run as they
are.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Sequence

from .base import NetworkError

LOG = logging.getLogger(__name__)
_TIMEOUT = 30  # no data-plane command takes seconds; one that hangs must not hold a worker


class Runner:
    def __init__(self, netns: str = "") -> None:
        self.netns = netns

    def prefix(self) -> list[str]:
        """What puts a command into the host's network namespace (empty on a real host)."""
        return ["nsenter", f"--net=/run/netns/{self.netns}", "--"] if self.netns else []

    def run(self, argv: Sequence[str], *, check: bool = True, input: str | None = None) -> str:
        """Run one command in the host's namespace; its stdout. A failure raises NetworkError
        naming the command and its stderr, unless `check` is false."""
        full = [*self.prefix(), *argv]
        try:
            result = subprocess.run(full, capture_output=True, text=True, input=input,
                                    timeout=_TIMEOUT, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise NetworkError(f"{' '.join(argv)}: {exc}") from exc
        if check and result.returncode != 0:
            raise NetworkError(f"{' '.join(argv)}: {result.stderr.strip() or result.returncode}")
        return result.stdout
