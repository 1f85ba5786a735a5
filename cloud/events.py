"""Domain events: what changed below, for whoever above wants to hear it.

Domain and orchestration code says what happened (`instance_changed(uuid)`) and never who listens;
edges subscribe in their AppConfig.ready() (the dashboard's live status connects to
`INSTANCE_CHANGED`). That keeps the imports pointing down: the conductor does not know a dashboard
exists.

Events are Django signals sent after the caller's transaction commits (at once outside one), with
ids only, so a listener never sees a row that is not there yet, or never will be. A listener that
fails is logged and never fails the change itself.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.dispatch import Signal

log = logging.getLogger(__name__)

# An instance row changed (state, name, lock, deletion…). Receivers get `instance_uuid=str`.
INSTANCE_CHANGED = Signal()


# Moves off or onto a host changed: a migration's status or progress, or a drain's step. Receivers
# get `host=str` (the source host of the move, or the drained host).
HOST_MOVES_CHANGED = Signal()


# A host's guests' statistics were recorded (cloud/compute/guest_stats.py; kept in Redis, so there
# is no transaction to wait for). Receivers get `host=str` and `instance_uuids=list[str]`.
GUEST_STATS_RECORDED = Signal()


def guest_stats_recorded(host: str, instance_uuids: list[str]) -> None:
    """Announce at once that new samples of these instances were kept."""
    for receiver, result in GUEST_STATS_RECORDED.send_robust(
            sender=None, host=host, instance_uuids=instance_uuids):
        if isinstance(result, Exception):
            log.warning("listener %r failed on the statistics of %s", receiver, host,
                        exc_info=result)


def host_moves_changed(host: str) -> None:
    """Announce, once the current transaction commits, that moves concerning `host` changed."""
    transaction.on_commit(lambda: _send(HOST_MOVES_CHANGED, host=host))


def instance_changed(instance_uuid: object, project_id: str | None = None) -> None:
    """Announce, once the current transaction commits, that the instance's row changed. A caller
    that knows the instance's project passes it, so that listeners need not read it again (then
    receivers also get `project_id=str`)."""
    uuid = str(instance_uuid)
    payload = {"instance_uuid": uuid}
    if project_id is not None:
        payload["project_id"] = str(project_id)
    transaction.on_commit(lambda: _send(INSTANCE_CHANGED, **payload))


def _send(signal: Signal, **payload: str) -> None:
    for receiver, result in signal.send_robust(sender=None, **payload):
        if isinstance(result, Exception):
            log.warning("listener %r failed on %s", receiver, payload, exc_info=result)
