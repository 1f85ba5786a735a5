"""The host tasks of the data plane (contract 1.6): new rules and addresses for ports this host
carries, and the routers it runs. Each message carries the whole wanted state of what it names,
so a repeated or reordered one converges on the latest; none is answered. A NetworkError is
retried (with backoff), then logged: the next refresh or sync of the same thing repairs it.
"""

from __future__ import annotations

import logging

from compute_agent import messages as msg
from compute_agent.host_task import host_task
from compute_agent.logcontext import request_context
from compute_agent.manager_base import ManagerBase
from compute_agent.network.base import NetworkError
from compute_agent.reporter import ReportError

LOG = logging.getLogger(__name__)

_RETRY = (NetworkError, ReportError)


class NetworkTasks(ManagerBase):
    @host_task(msg.TASK_REFRESH_PORTS, retry_for=_RETRY)
    def refresh_ports(self, request: msg.PortsRefresh) -> None:
        with request_context(request.request_id):
            LOG.info("refreshing %d port(s), removing %d", len(request.ports),
                     len(request.removed))
            self.network.refresh(request)

    @host_task(msg.TASK_SYNC_ROUTER, retry_for=_RETRY)
    def sync_router(self, request: msg.RouterSpec) -> None:
        with request_context(request.request_id):
            LOG.info("syncing router %s", request.router_id)
            self.network.sync_router(request)

    @host_task(msg.TASK_REMOVE_ROUTER, retry_for=_RETRY)
    def remove_router(self, request: msg.RouterSpec) -> None:
        with request_context(request.request_id):
            LOG.info("removing router %s", request.router_id)
            self.network.remove_router(request.router_id, request.revision)
