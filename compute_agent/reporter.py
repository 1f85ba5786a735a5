"""The edge where the agent's reports leave the process: conductor tasks on the broker.

The manager depends only on the Reporter protocol, so tests hand it a recorder instead of a broker.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from compute_agent import messages as msg

LOG = logging.getLogger(__name__)


class ReportError(Exception):
    """A report could not be handed to the broker (after the publisher's own retries)."""


class Reporter(Protocol):
    def instance_event(self, event: msg.InstanceEvent) -> None: ...

    def host_report(self, report: msg.HostReport) -> None: ...


class TaskSender(Protocol):
    """The one method of a Celery app the reporter needs."""

    def send_task(self, name: str, args: Any = None, **options: Any) -> Any: ...


class CeleryReporter:
    """Sends each report as a conductor task, by name: the agent has no code of the conductor."""

    def __init__(self, app: TaskSender) -> None:
        self._app = app

    def _send(self, task_name: str, payload: dict[str, Any]) -> None:
        try:
            self._app.send_task(task_name, args=[payload], queue=msg.CONDUCTOR_QUEUE)
        except Exception as exc:
            raise ReportError(f"could not publish {task_name}: {exc}") from exc

    def instance_event(self, event: msg.InstanceEvent) -> None:
        self._send(msg.TASK_INSTANCE_EVENT, event.to_dict())
        LOG.info("reported %s for instance %s", event.event, event.instance_uuid)

    def host_report(self, report: msg.HostReport) -> None:
        self._send(msg.TASK_HOST_REPORT, report.to_dict())
        LOG.debug("reported host %s with %d domains", report.host, len(report.domains))
