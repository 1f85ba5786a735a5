"""A minimal QMP client: one command per connection over qemu-storage-daemon's unix socket.

Why not the `qemu.qmp` package: it is asyncio throughout (its synchronous wrapper runs an event
loop per call), is still 0.0.x, and the agent is threaded; what the volume back end needs is
"send one JSON command, read its answer", which is a few lines over a socket.

Why a connection per command: a socket chardev serves one client at a time, so a connection held
open by the agent would lock out an operator's `qmp-shell` (and vice versa for as long as it is
held). Connecting costs about a millisecond; commands are rare.
"""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path
from typing import Any

TIMEOUT = 60.0  # an internal snapshot of a big, busy volume takes seconds; nothing takes minutes


class QmpError(Exception):
    """The daemon answered with an error; `error_class` is QMP's class (GenericError, …)."""

    def __init__(self, command: str, error_class: str, desc: str) -> None:
        super().__init__(f"{command}: {desc}")
        self.error_class = error_class
        self.desc = desc


class QmpUnavailable(Exception):
    """Nothing answers on the socket (the daemon is not running, or died mid-command)."""


class Qmp:
    def __init__(self, path: Path, *, timeout: float = TIMEOUT) -> None:
        self.path = path
        self.timeout = timeout
        self._lock = threading.Lock()  # one client at a time is all the chardev serves anyway

    def execute(self, command: str, **arguments: Any) -> Any:
        """Run one command and return its "return" value."""
        return self._session(command, arguments, self.timeout)

    def answers(self, timeout: float = 5.0) -> bool:
        """Whether a daemon answers, without waiting long on one that hangs or is exiting."""
        try:
            self._session("query-version", {}, timeout)
        except (QmpUnavailable, QmpError):
            return False
        return True

    def _session(self, command: str, arguments: dict[str, Any], timeout: float) -> Any:
        with self._lock:
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                    sock.settimeout(timeout)
                    sock.connect(str(self.path))
                    stream = sock.makefile("rw", encoding="utf-8", newline="\n")
                    _read_reply(stream, "greeting", greeting=True)
                    _send(stream, "qmp_capabilities", {})
                    _read_reply(stream, "qmp_capabilities")
                    _send(stream, command, arguments)
                    return _read_reply(stream, command)
            except (OSError, ValueError) as exc:  # ValueError: a line that is not JSON
                raise QmpUnavailable(f"{self.path}: {exc}") from exc


def _send(stream: Any, command: str, arguments: dict[str, Any]) -> None:
    stream.write(json.dumps({"execute": command, "arguments": arguments}) + "\n")
    stream.flush()


def _read_reply(stream: Any, command: str, *, greeting: bool = False) -> Any:
    while True:
        line = stream.readline()
        if not line:
            raise OSError(f"connection closed while waiting for the answer to {command}")
        message = json.loads(line)
        if greeting and "QMP" in message:
            return message
        if "return" in message:
            return message["return"]
        if "error" in message:
            error = message["error"]
            raise QmpError(command, error.get("class", "GenericError"), error.get("desc", ""))
        # anything else is an asynchronous event: nobody here waits for one
