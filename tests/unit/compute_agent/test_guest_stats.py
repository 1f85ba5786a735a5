"""The statistics loop: one report of every running guest per period, sent as a conductor task,
and a hypervisor or broker failure costs a sample, never the loop."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from compute_agent import messages as msg
from compute_agent.drivers.base import DriverError
from compute_agent.drivers.libvirt import LibvirtDriver
from compute_agent.guest_stats import StatsLoop
from compute_agent.reporter import CeleryReporter, HostIdentity, ReportError
from compute_agent.worker import parse_args


class Recorder:
    def __init__(self, fail: Exception | None = None) -> None:
        self.reports: list[msg.GuestStatsReport] = []
        self.fail = fail

    def guest_stats(self, report: msg.GuestStatsReport) -> None:
        if self.fail is not None:
            raise self.fail
        self.reports.append(report)


class Broker:
    def __init__(self) -> None:
        self.sent: list[tuple[str, Any, dict[str, Any]]] = []

    def send_task(self, name: str, args: Any = None, **options: Any) -> None:
        self.sent.append((name, args, options))


def test_one_report_carries_every_running_guest(
    driver: LibvirtDriver, spawn_request: Callable[..., msg.SpawnRequest]
) -> None:
    a, b = spawn_request(), spawn_request()
    driver.spawn(a)
    driver.spawn(b)
    sender = Recorder()
    assert StatsLoop("host-a", driver, sender, 10.0).send_once()
    (report,) = sender.reports
    assert (report.host, report.interval) == ("host-a", 10.0)
    assert {g.uuid for g in report.guests} == {a.instance_uuid, b.instance_uuid}


def test_a_failing_hypervisor_or_broker_costs_a_sample_not_the_loop(
    driver: LibvirtDriver, monkeypatch
) -> None:
    loop = StatsLoop("host-a", driver, Recorder(fail=ReportError("broker away")), 10.0)
    assert loop.send_once() is False

    def broken() -> list[msg.GuestStats]:
        raise DriverError("libvirt went away")

    monkeypatch.setattr(driver, "guest_stats", broken)
    sender = Recorder()
    loop = StatsLoop("host-a", driver, sender, 10.0)
    assert loop.send_once() is False
    monkeypatch.undo()
    assert loop.send_once() is True and loop.sent == 1


def test_reports_go_to_the_conductor_signed_and_expire_when_stale() -> None:
    broker = Broker()
    identity = HostIdentity(host="host-a", secret="s3cret")
    report = msg.GuestStatsReport(host="host-a", collected_at=1.0, interval=20.0)
    CeleryReporter(broker, identity).guest_stats(report)
    ((name, args, options),) = broker.sent
    assert name == msg.TASK_GUEST_STATS == "conductor.guest_stats"
    assert options["queue"] == msg.CONDUCTOR_QUEUE and options["expires"] == 60.0
    assert options["headers"][msg.SIGNATURE_HEADER] == msg.report_signature(
        "s3cret", "host-a", msg.TASK_GUEST_STATS, args[0])


def test_the_period_is_a_setting_and_zero_turns_statistics_off() -> None:
    assert parse_args(["--host", "h"], environ={}).stats_interval == 10.0
    assert parse_args(["--host", "h"], environ={"KUMO_GUEST_STATS_INTERVAL": "2"}).stats_interval \
        == 2.0
    config = parse_args(["--host", "h", "--stats-interval", "0"], environ={})
    loop = StatsLoop("h", None, Recorder(), config.stats_interval)  # type: ignore[arg-type]
    loop.start()
    assert loop._thread is None  # nothing runs
