"""/os-instance_usage_audit_log[/{before}] (admins): how the periodic instance-usage audit of the
last completed month went on each compute host. Kumo runs no such audit (Nova's default,
instance_usage_audit off, too), so every host is listed as not run and nothing was audited."""

from __future__ import annotations

from datetime import UTC, datetime

from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response

from cloud import errors
from cloud.compute import hosts
from cloud.compute.models import COMPUTE_BINARY

from ..base import ComputeView


def _period(before: datetime) -> tuple[datetime, datetime]:
    """The last whole month before `before`, as Nova's default audit period."""
    end = before.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    begin = end.replace(year=end.year - 1, month=12) if end.month == 1 else \
        end.replace(month=end.month - 1)
    return begin, end


def _log(before: datetime) -> dict:
    begin, end = _period(before)
    compute_hosts = sorted({s.host for s in hosts.list_services(COMPUTE_BINARY)})
    return {
        "period_beginning": str(begin.replace(tzinfo=None)),
        "period_ending": str(end.replace(tzinfo=None)),
        "num_hosts": len(compute_hosts),
        "num_hosts_done": 0,
        "num_hosts_running": 0,
        "num_hosts_not_run": len(compute_hosts),
        "hosts_not_run": compute_hosts,
        "total_instances": 0,
        "total_errors": 0,
        "overall_status": f"{'ALL' if not compute_hosts else f'0 of {len(compute_hosts)}'} "
                          "hosts done. 0 errors.",
        "log": {},
    }


class UsageAuditLogList(ComputeView):
    def get(self, request: Request) -> Response:
        self.authorize("compute:usage_audit_log")
        return Response({"instance_usage_audit_logs": _log(datetime.now(UTC))})


class UsageAuditLogItem(ComputeView):
    def get(self, request: Request, before: str) -> Response:
        self.authorize("compute:usage_audit_log")
        fmt = "%Y-%m-%d %H:%M:%S.%f" if "." in before else "%Y-%m-%d %H:%M:%S"
        try:
            moment = datetime.strptime(before, fmt).replace(tzinfo=UTC)
        except ValueError:
            raise errors.BadRequest(f"Invalid timestamp for date {before}") from None
        return Response({"instance_usage_audit_log": _log(moment)})


urlpatterns = [
    path("/os-instance_usage_audit_log", UsageAuditLogList.as_view()),
    path("/os-instance_usage_audit_log/<str:before>", UsageAuditLogItem.as_view()),
]
