"""How many messages wait in each broker queue, asked at scrape time, for Redis or RabbitMQ alike.

Kombu's passive queue declaration answers both: on Redis it is the LLEN of the queue's lists, on
RabbitMQ the queue's message count. A queue that does not exist (on Redis: one that is empty) holds
nothing. Messages a worker has taken but not acknowledged are not counted: they are not waiting.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from kombu import Connection
from kombu.exceptions import ChannelError, OperationalError
from prometheus_client.core import GaugeMetricFamily

_TIMEOUT_SECONDS = 2.0


def depths(queues: Iterable[str]) -> dict[str, int]:
    """Messages waiting in each queue. Raises when the broker cannot be reached."""
    options = {
        **settings.CELERY_BROKER_TRANSPORT_OPTIONS,
        "socket_timeout": _TIMEOUT_SECONDS,
        "socket_connect_timeout": _TIMEOUT_SECONDS,
        "max_retries": 1,
    }
    answer: dict[str, int] = {}
    with Connection(
        settings.CELERY_BROKER_URL, connect_timeout=_TIMEOUT_SECONDS, transport_options=options
    ) as connection:
        connection.ensure_connection(max_retries=1, interval_start=0.1, interval_step=0.1,
                                     interval_max=0.1)
        for queue in queues:
            # RabbitMQ closes a channel on a passive declare of a missing queue: one per queue.
            channel = connection.channel()
            try:
                answer[queue] = channel.queue_declare(queue=queue, passive=True).message_count
            except ChannelError:
                answer[queue] = 0
            finally:
                try:
                    channel.close()
                except (ChannelError, OperationalError, OSError):
                    pass
    return answer


def depth_family(queues: Iterable[str]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(
        "kumo_queue_depth",
        "Messages waiting in a broker queue (taken but unacknowledged ones are not counted).",
        labels=["queue"],
    )
    for queue, count in sorted(depths(queues).items()):
        family.add_metric([queue], count)
    return family
