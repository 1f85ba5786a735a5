"""kombu's Redis transport with one redis client per channel for its short commands.

kombu's Redis Channel builds a new redis.Redis object (Channel.conn_or_acquire -> _create_client)
for every publish, every delivered message's unacked-index entry (QoS.append) and every
acknowledgement; redis.Redis.__init__ builds an event dispatcher and a ~200-entry case-insensitive
response-callback table each time: about 6% of a conductor's GIL time during boots, as much in the
agents and the scheduler. A redis.Redis over a connection pool is safe to share between threads
(each command takes a pool connection and gives it back; a pipeline is a new object per use), so
this Channel keeps one and builds another only when the channel's pool is replaced (after a
connection error kombu drops its pools).

Nothing else changes: the same commands reach Redis in the same order, the unacked index and
visibility timeout work as before, so a message taken and not acknowledged is still handed out
again (tests/unit/test_redis_transport.py). Both the control plane (cloud/celery.py) and the host
processes (compute_agent/host_process.py) use it for redis:// brokers; this module imports nothing
of Django, so a host process may load it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from kombu.transport import redis as kombu_redis

# What Celery's broker_transport names (a transport given by URL scheme only comes from kombu's
# own aliases).
TRANSPORT = "compute_agent.redis_transport:Transport"


class Channel(kombu_redis.Channel):
    _shared_client: Any = None

    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        if client:
            yield client
            return
        pool = self.pool
        shared = self._shared_client
        if shared is None or shared.connection_pool is not pool:
            # Two threads may both build one here; the later simply replaces the other.
            shared = self._shared_client = self._create_client()
        yield shared


class Transport(kombu_redis.Transport):
    Channel = Channel


def transport_for(broker_url: str) -> str | None:
    """This transport for a plain redis:// broker; None (kombu's choice by scheme) for any other,
    rediss:// and sentinel included, which keep kombu's own handling of their URLs."""
    try:
        scheme = urlsplit(broker_url).scheme
    except ValueError:
        return None
    return TRANSPORT if scheme == "redis" else None
