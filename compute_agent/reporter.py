"""The edge where the agent's reports leave the process: conductor tasks on the broker.

The manager depends only on the Reporter protocol, so tests hand it a recorder instead of a broker.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from compute_agent import messages as msg

LOG = logging.getLogger(__name__)


class ReportError(Exception):
    """A report could not be handed to the broker (after the publisher's own retries)."""


class Reporter(Protocol):
    def instance_event(self, event: msg.InstanceEvent) -> None: ...

    def host_report(self, report: msg.HostReport) -> None: ...

    def domains_changed(self, report: msg.DomainsChanged) -> None: ...


class TaskSender(Protocol):
    """The one method of a Celery app the reporter needs."""

    def send_task(self, name: str, args: Any = None, **options: Any) -> Any: ...


@dataclass(frozen=True)
class HostIdentity:
    """A host that joined with a broker credential of its own (compute_agent.join)."""

    host: str
    secret: str = field(repr=False)
    # The RabbitMQ user the agent connects as; "" on Redis, which vouches for no sender.
    amqp_user: str = ""

    def publish_options(self, task_name: str, payload: dict[str, Any]) -> dict[str, Any]:
        """How a report goes out with this credential.

        The host's broker user may not declare the conductor's queue (declaring includes the right
        to delete it), so nothing is declared. On RabbitMQ it may write only to the `conductor`
        exchange (never to the default exchange, through which it could reach any queue) and the
        broker checks the user_id it sets; on Redis it may only push to the conductor's list,
        which the default exchange does directly. Either way the report is signed.
        """
        options: dict[str, Any] = {
            "declare": [],
            "headers": {
                msg.SIGNER_HEADER: self.host,
                msg.SIGNATURE_HEADER: msg.report_signature(
                    self.secret, self.host, task_name, payload),
            },
        }
        if self.amqp_user:
            options.update(exchange=msg.CONDUCTOR_QUEUE, routing_key=msg.CONDUCTOR_QUEUE,
                           user_id=self.amqp_user)
        return options


class CeleryReporter:
    """Sends each report as a conductor task, by name: the agent has no code of the conductor."""

    def __init__(self, app: TaskSender, identity: HostIdentity | None = None) -> None:
        self._app = app
        self._identity = identity

    def _send(self, task_name: str, payload: dict[str, Any], **extra: Any) -> None:
        options = (
            {} if self._identity is None else self._identity.publish_options(task_name, payload)
        )
        options.update(extra)
        try:
            self._app.send_task(task_name, args=[payload], queue=msg.CONDUCTOR_QUEUE, **options)
        except Exception as exc:
            raise ReportError(f"could not publish {task_name}: {exc}") from exc

    def instance_event(self, event: msg.InstanceEvent) -> None:
        self._send(msg.TASK_INSTANCE_EVENT, event.to_dict())
        LOG.info("reported %s for instance %s", event.event, event.instance_uuid)

    def host_report(self, report: msg.HostReport) -> None:
        self._send(msg.TASK_HOST_REPORT, report.to_dict())
        LOG.debug("reported host %s with %d domains", report.host, len(report.domains))

    def domains_changed(self, report: msg.DomainsChanged) -> None:
        self._send(msg.TASK_DOMAINS_CHANGED, report.to_dict())
        LOG.debug("reported domains %s", ", ".join(d.uuid for d in report.domains))

    def guest_stats(self, report: msg.GuestStatsReport) -> None:
        # Counters are worth something only while they are fresh: a report the conductor could not
        # take in time (it was down, the queue was long) is dropped by it rather than applied late,
        # and the next one carries the same counters anyway.
        self._send(msg.TASK_GUEST_STATS, report.to_dict(), expires=max(30.0, 3 * report.interval))
        LOG.debug("reported statistics of %d guests", len(report.guests))
