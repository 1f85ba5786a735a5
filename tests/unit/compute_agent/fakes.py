"""Test doubles for the agent's edges."""

from __future__ import annotations

from compute_agent import messages as msg


class RecordingReporter:
    """Stands where messages leave the process: keeps what would have been published."""

    def __init__(self) -> None:
        self.events: list[msg.InstanceEvent] = []
        self.reports: list[msg.HostReport] = []
        # Every DomainsChanged the conductor got, whether alone or with an event (contract 1.12);
        # `alone`: those sent as messages of their own.
        self.changes: list[msg.DomainsChanged] = []
        self.alone: list[msg.DomainsChanged] = []
        self.fail_with: Exception | None = None

    def instance_event(self, event: msg.InstanceEvent) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.events.append(event)
        if event.domains_changed is not None:
            self.changes.append(event.domains_changed)

    def host_report(self, report: msg.HostReport) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.reports.append(report)

    def domains_changed(self, report: msg.DomainsChanged) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.changes.append(report)
        self.alone.append(report)
