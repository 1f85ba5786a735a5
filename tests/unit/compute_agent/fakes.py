"""Test doubles for the agent's edges."""

from __future__ import annotations

from compute_agent import messages as msg


class RecordingReporter:
    """Stands where messages leave the process: keeps what would have been published."""

    def __init__(self) -> None:
        self.events: list[msg.InstanceEvent] = []
        self.reports: list[msg.HostReport] = []
        self.changes: list[msg.DomainsChanged] = []
        self.fail_with: Exception | None = None

    def instance_event(self, event: msg.InstanceEvent) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.events.append(event)

    def host_report(self, report: msg.HostReport) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.reports.append(report)

    def domains_changed(self, report: msg.DomainsChanged) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.changes.append(report)
