"""The shared cache keeps one Redis connection pool per process (cloud/cache.py): the web process
makes a cache object per request (Django's per-context cache handler, and a context copied afresh
for every request), and each of those used to connect to Redis anew for the request's one read of
the identity generation."""

from __future__ import annotations

import contextvars
import os
import secrets

import pytest
import redis
from django.core.cache import CacheHandler

URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def reachable() -> None:
    try:
        redis.Redis.from_url(URL, socket_connect_timeout=1).ping()
    except redis.RedisError:
        pytest.skip(f"no Redis at {URL}")


def test_every_requests_cache_object_shares_one_pool_and_one_connection(reachable):
    handler = CacheHandler({"default": {"BACKEND": "cloud.cache.RedisCache", "LOCATION": URL,
                                        "KEY_PREFIX": f"test-{secrets.token_hex(4)}"}})

    def one_request() -> tuple[object, object]:
        cache = handler["default"]  # a new object in each request's context
        return cache, cache._cache.get_client()

    # As the web process serves requests: each in a context of its own (a2wsgi copies the event
    # loop's, where no cache object was ever made).
    contextvars.Context().run(lambda: handler["default"].set("generation", 7, timeout=30))
    seen = [contextvars.Context().run(one_request) for _ in range(20)]

    assert len({id(cache) for cache, _ in seen}) == 20  # Django's handler: one per request
    assert len({id(client) for _, client in seen}) == 1  # ours: one redis client for them all
    assert [cache.get("generation") for cache, _ in seen] == [7] * 20
    assert seen[0][1].connection_pool._created_connections == 1
    seen[0][0].delete("generation")
