"""Changes the hosts' data planes must hear of, announced by the network domain.

Where a port runs is compute's knowledge (instances live on hosts), so the network domain does not
send anything itself: it announces here, inside the transaction of the change, and
cloud.compute.network_plane (connected in compute's AppConfig.ready) works out which hosts carry
what and queues their messages, which leave when the transaction commits.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.dispatch import Signal

# Receivers get `port_ids: list[str]`: ports whose rules or addresses changed.
PORTS_CHANGED = Signal()
# Receivers get `group_ids: list[str]`: groups whose rules or members changed.
GROUPS_CHANGED = Signal()
# Receivers get `router_id: str`: interfaces, gateway, routes or floating IPs changed.
ROUTER_CHANGED = Signal()
# Receivers get `router_id: str, host: str`.
ROUTER_REMOVED = Signal()
# Receivers get `port_id: str, host: str`: a port a host carried is gone.
PORT_REMOVED = Signal()


def notify_ports(port_ids: Iterable[str]) -> None:
    PORTS_CHANGED.send(sender=None, port_ids=[str(p) for p in port_ids])


def notify_groups(group_ids: Iterable[str]) -> None:
    GROUPS_CHANGED.send(sender=None, group_ids=[str(g) for g in group_ids])


def notify_router(router_id: str) -> None:
    ROUTER_CHANGED.send(sender=None, router_id=str(router_id))


def notify_router_removed(router_id: str, host: str) -> None:
    ROUTER_REMOVED.send(sender=None, router_id=str(router_id), host=host)


def notify_port_removed(port_id: str, host: str) -> None:
    PORT_REMOVED.send(sender=None, port_id=str(port_id), host=host)
