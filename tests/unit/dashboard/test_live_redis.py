"""Live updates through the Redis channel layer, as the real processes send them: from sync code,
on one long-lived loop of the process (cloud/dashboard/live.py group_send), received by a listener."""

from __future__ import annotations

import secrets

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from cloud.dashboard import live


@pytest.fixture
def redis_layer(settings):
    import redis

    url = settings.REDIS_URL
    try:
        redis.Redis.from_url(url).ping()
    except redis.RedisError as exc:
        pytest.skip(f"no Redis at {url}: {exc}")
    settings.CHANNEL_LAYERS = {"default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [url], "prefix": f"kumo-test:{secrets.token_hex(4)}:"}}}
    return get_channel_layer()


def test_every_change_reaches_the_listener_through_one_loop_of_the_process(redis_layer):
    group = live.group_for("p-1")
    channel = async_to_sync(redis_layer.new_channel)()
    async_to_sync(redis_layer.group_add)(group, channel)
    try:
        live.publish("u-1", "p-1")
        loop = live._publisher_loop()
        live.publish("u-2", "p-1")

        assert live._publisher_loop() is loop  # no new loop (nor connection) per message
        received = [async_to_sync(redis_layer.receive)(channel) for _ in range(2)]
        assert received == [{"type": live.EVENT_TYPE, "uuid": "u-1"},
                            {"type": live.EVENT_TYPE, "uuid": "u-2"}]
    finally:
        async_to_sync(redis_layer.group_discard)(group, channel)


def test_a_change_nobody_watches_sends_nothing_and_a_watched_one_still_arrives(redis_layer,
                                                                              monkeypatch):
    sent: list[str] = []
    layer_send = redis_layer.group_send

    async def counting_send(group, message):
        sent.append(group)
        await layer_send(group, message)

    monkeypatch.setattr(redis_layer, "group_send", counting_send)
    live.publish("u-1", "p-nobody")
    assert sent == []  # no group: not handed to the loop, nothing asked of Redis but EXISTS

    group = live.group_for("p-1")
    channel = async_to_sync(redis_layer.new_channel)()
    async_to_sync(redis_layer.group_add)(group, channel)
    try:
        live.publish("u-2", "p-1")
        assert sent == [group]
        assert async_to_sync(redis_layer.receive)(channel) == {"type": live.EVENT_TYPE,
                                                                "uuid": "u-2"}
    finally:
        async_to_sync(redis_layer.group_discard)(group, channel)
    live.publish("u-3", "p-1")  # the last member left: the group is gone from Redis
    assert sent == [group]
