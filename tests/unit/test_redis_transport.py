"""compute_agent/redis_transport.py: kombu's Redis transport keeping one client per channel still
hands out again a message taken and never acknowledged, once the visibility timeout has passed;
acknowledged messages leave nothing behind; and both Celery apps use it on a redis:// broker."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator

import pytest
from kombu import Connection

from compute_agent import redis_transport
from compute_agent.host_process import create_app


@pytest.fixture
def connection(settings) -> Iterator[Connection]:
    import redis

    url = settings.REDIS_URL
    try:
        redis.Redis.from_url(url).ping()
    except redis.RedisError as exc:
        pytest.skip(f"no Redis at {url}: {exc}")
    prefix = f"kumo-test-{secrets.token_hex(4)}:"
    conn = Connection(url, transport=redis_transport.TRANSPORT, transport_options={
        "visibility_timeout": 1, "global_keyprefix": prefix})
    try:
        yield conn
    finally:
        conn.release()
        raw = redis.Redis.from_url(url)
        for key in raw.scan_iter(f"{prefix}*"):
            raw.delete(key)


def test_a_message_taken_and_not_acknowledged_is_handed_out_again(connection) -> None:
    assert isinstance(connection.default_channel, redis_transport.Channel)
    queue = connection.SimpleQueue("redelivery")
    queue.put({"n": 1})
    taken = queue.get(timeout=5)
    assert taken.payload == {"n": 1}
    # Not acknowledged (its worker died): after the visibility timeout it is restored.
    time.sleep(1.5)
    connection.default_channel.qos.restore_visible(interval=1)
    again = queue.get(timeout=5)
    assert again.payload == {"n": 1}
    assert again.delivery_info.get("redelivered") or again.headers.get("redelivered")
    again.ack()
    time.sleep(1.5)
    connection.default_channel.qos.restore_visible(interval=1)
    with pytest.raises(queue.Empty):
        queue.get(timeout=1)  # acknowledged: gone for good
    queue.close()


def test_one_client_serves_the_channel_until_its_pool_is_replaced(connection) -> None:
    channel = connection.default_channel
    with channel.conn_or_acquire() as first, channel.conn_or_acquire() as second:
        assert first is second
    channel._disconnect_pools()  # as kombu does after a connection error
    with channel.conn_or_acquire() as third:
        assert third is not first
        assert third.connection_pool is channel.pool
        assert third.ping()


def test_only_plain_redis_urls_get_it() -> None:
    assert redis_transport.transport_for("redis://127.0.0.1:6379/0") == redis_transport.TRANSPORT
    for url in ("rediss://h:6380/0", "sentinel://h:26379", "amqp://u:p@h//", "memory://", ""):
        assert redis_transport.transport_for(url) is None


def test_both_celery_apps_use_it_on_a_redis_broker() -> None:
    from types import SimpleNamespace

    from cloud.celery import app

    expected = redis_transport.transport_for(str(app.conf.broker_url))
    assert app.conf.broker_transport == expected
    agent = create_app(SimpleNamespace(
        host="h1", broker_url="redis://127.0.0.1:6379/0", queue="compute.h1", identity=None))
    assert agent.conf.broker_transport == redis_transport.TRANSPORT
    assert agent.connection_for_write().transport.Channel is redis_transport.Channel
