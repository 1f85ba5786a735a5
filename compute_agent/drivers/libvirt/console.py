"""The guest's serial console log, read from its end."""

from __future__ import annotations

import os
from collections import deque
from pathlib import Path

from compute_agent import messages as msg
from compute_agent.domain_xml import canonical_uuid
from compute_agent.drivers.libvirt.connection import LibvirtBase, NoSuchInstance

# console_output reads at most this much of the log's end, whatever `length` asks for.
CONSOLE_TAIL_BYTES = 256 * 1024


class ConsoleMixin(LibvirtBase):
    def console_output(self, instance_uuid: str, length: int | None) -> str:
        instance_uuid = canonical_uuid(instance_uuid)
        state = self.power_state(instance_uuid)
        if state == msg.POWER_NOSTATE:
            raise NoSuchInstance(f"instance {instance_uuid} has no domain on this host")
        if not self.has_disks:
            # Several lines, so that `length` can be seen to cut them as it does a real log.
            log = "".join(f"[kumo test driver] {instance_uuid} line {n}: {state}, no real console\n"
                          for n in range(1, 11))
            return _last_lines(log, length)
        return _tail(self.files.console_log(instance_uuid), length)


def _tail(path: Path, length: int | None) -> str:
    """The last `length` lines of a log (all of it for None), from at most its last
    CONSOLE_TAIL_BYTES; a log not written yet is empty."""
    try:
        with open(path, "rb") as log:
            log.seek(0, os.SEEK_END)
            size = log.tell()
            log.seek(max(0, size - CONSOLE_TAIL_BYTES))
            data = log.read()
    except FileNotFoundError:
        return ""
    return _last_lines(data.decode("utf-8", errors="replace"), length)


def _last_lines(text: str, length: int | None) -> str:
    """The last `length` lines joined by newlines, with no newline after the last (as Nova
    answers: a client that splits on newlines counts exactly `length`)."""
    if length is None:
        return text
    if length <= 0:
        return ""
    return "\n".join(deque(text.splitlines(), maxlen=length))
