"""Where recorded counts live: one Redis hash per family, shared by every process on every machine.

Each process gathers its increments in memory and a background thread sends them every
`KUMO_METRICS_FLUSH_INTERVAL` seconds in one pipelined round trip (HINCRBY for counts,
HINCRBYFLOAT for a histogram's sum), so a request or task never waits for Redis (bench/
metrics_bench.py measured why: under load a synchronous round trip cost milliseconds). Whichever
web process is scraped sends its own first, then reads every hash back. Redis adds atomically, so
nothing is lost between processes; a process killed outright loses at most its last interval.
`KUMO_METRICS_URL` chooses: a redis:// URL (default: REDIS_URL), `memory://` (this process only:
the unit tests, a one-process dev run) or `off`.

Recording must never hurt the work it measures: a Redis that fails is skipped for
`_BACKOFF_SECONDS` (so a dead Redis costs one timeout per interval, not one per request), and the
loss is logged once per interval.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Protocol

from django.conf import settings

from cloud.optional_imports import redis  # without its OpenTelemetry metrics

log = logging.getLogger(__name__)

# (hash key, field) -> amount; an int goes through HINCRBY, a float through HINCRBYFLOAT.
Increments = Mapping[tuple[str, str], "int | float"]

_TIMEOUT_SECONDS = 0.5
_BACKOFF_SECONDS = 10.0


class Store(Protocol):
    def add(self, increments: Increments) -> None: ...

    def read(self, keys: Iterable[str]) -> dict[str, dict[str, str]]: ...


class RedisStore:
    def __init__(self, url: str):
        # redis-py's pool notices a fork and reconnects, so one client per process is safe.
        self.client = redis.Redis.from_url(
            url, socket_timeout=_TIMEOUT_SECONDS, socket_connect_timeout=_TIMEOUT_SECONDS
        )
        self._skip_until = 0.0

    def add(self, increments: Increments) -> None:
        if not increments or time.monotonic() < self._skip_until:
            return
        pipe = self.client.pipeline(transaction=False)
        for (key, field), amount in increments.items():
            if isinstance(amount, float):
                pipe.hincrbyfloat(key, field, amount)
            else:
                pipe.hincrby(key, field, amount)
        try:
            pipe.execute()
        except redis.RedisError as error:
            self._skip_until = time.monotonic() + _BACKOFF_SECONDS
            log.warning("metrics not recorded for %.0f s: Redis failed (%s)", _BACKOFF_SECONDS,
                        type(error).__name__)

    def read(self, keys: Iterable[str]) -> dict[str, dict[str, str]]:
        keys = list(keys)
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(key)
        answers = pipe.execute()
        return {
            key: {f.decode(): v.decode() for f, v in answer.items()}
            for key, answer in zip(keys, answers, strict=True)
        }


class BufferedStore:
    """Gathers increments in this process and hands them to `inner` from a daemon thread every
    `interval` seconds (and at exit, and before a read)."""

    def __init__(self, inner: Store, interval: float):
        self.inner = inner
        self.interval = interval
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, str], int | float] = {}
        self._pid = 0
        atexit.register(self.flush)

    def add(self, increments: Increments) -> None:
        with self._lock:
            if self._pid != os.getpid():
                # First use in this process (or in a child forked with the parent's buffer, whose
                # counts the parent will send): start empty, with a sender of our own.
                self._pid = os.getpid()
                self._pending = {}
                threading.Thread(target=self._send_forever, name="kumo-metrics",
                                 daemon=True).start()
            for field, amount in increments.items():
                self._pending[field] = self._pending.get(field, 0) + amount

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
        if pending:
            self.inner.add(pending)

    def read(self, keys: Iterable[str]) -> dict[str, dict[str, str]]:
        self.flush()
        return self.inner.read(keys)

    def _send_forever(self) -> None:
        pid = os.getpid()
        while self._pid == pid:
            time.sleep(self.interval)
            try:
                self.flush()
            except Exception:  # the sender must outlive any one failure
                log.exception("metrics not sent")


class MemoryStore:
    """The same in one process's memory: for the unit tests and a single-process run."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hashes: dict[str, dict[str, int | float]] = {}

    def add(self, increments: Increments) -> None:
        with self._lock:
            for (key, field), amount in increments.items():
                fields = self._hashes.setdefault(key, {})
                fields[field] = fields.get(field, 0) + amount

    def read(self, keys: Iterable[str]) -> dict[str, dict[str, str]]:
        with self._lock:
            return {k: {f: str(v) for f, v in self._hashes.get(k, {}).items()} for k in keys}

    def clear(self) -> None:
        with self._lock:
            self._hashes.clear()


class OffStore:
    def add(self, increments: Increments) -> None:
        pass

    def read(self, keys: Iterable[str]) -> dict[str, dict[str, str]]:
        return {key: {} for key in keys}


_stores: dict[tuple[str, float], Store] = {}
_stores_lock = threading.Lock()


def current() -> Store:
    """The store `KUMO_METRICS_URL` names, made once per URL and interval (a test may switch)."""
    url, interval = settings.KUMO_METRICS_URL, settings.KUMO_METRICS_FLUSH_INTERVAL
    store = _stores.get((url, interval))
    if store is None:
        with _stores_lock:
            store = _stores.get((url, interval))
            if store is None:
                store = _stores[(url, interval)] = _make(url, interval)
    return store


def _make(url: str, interval: float) -> Store:
    if url == "off":
        return OffStore()
    if url.startswith("memory:"):
        return MemoryStore()
    if interval > 0:
        return BufferedStore(RedisStore(url), interval)
    return RedisStore(url)
