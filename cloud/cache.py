"""Django's Redis cache backend with one connection pool per process instead of one per request.

Django keeps a cache object per *context* (asgiref's Local), and the web process serves each
request in a context copied afresh (a2wsgi's thread hop), so every request built a new RedisCache,
a new connection pool and a new TCP connection to Redis for its one read of the identity generation
(cloud/identity/token_cache.py): py-spy put three quarters of that read's CPU in connecting, and
Redis paid a connection setup per API request. Here the client, its pools and its redis.Redis
objects live once per process (a redis-py pool notices a fork and starts afresh in the child), and
each request's cache object only points at them.
"""

from __future__ import annotations

import threading
from typing import Any

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient
from django.utils.functional import cached_property

_clients: dict[tuple[tuple[str, ...], str], RedisCacheClient] = {}
_lock = threading.Lock()


class _SharedClient(RedisCacheClient):
    """A client whose redis.Redis objects are made once per pool, not once per call (thread-safe:
    a redis.Redis takes a connection from its pool for each command)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._redis: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        index = self._get_connection_pool_index(write)
        client = self._redis.get(index)
        if client is None:
            with _lock:
                client = self._redis.get(index)
                if client is None:
                    client = self._client(connection_pool=self._get_connection_pool(write))
                    self._redis[index] = client
        return client


class RedisCache(DjangoRedisCache):
    @cached_property
    def _cache(self) -> RedisCacheClient:
        key = (tuple(self._servers), repr(sorted(self._options.items())))
        client = _clients.get(key)
        if client is None:
            with _lock:
                client = _clients.get(key)
                if client is None:
                    client = _clients[key] = _SharedClient(self._servers, **self._options)
        return client
