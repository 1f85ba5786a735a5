"""Counting and drawing: counters and histograms summed in the store, one round trip per batch,
and a store that fails never failing the work it counts."""

from __future__ import annotations

import socket
import time

import pytest
import redis

from cloud import metrics
from cloud.metrics import exposition, store
from cloud.metrics.families import API_REQUEST_SECONDS, CLAIM_CONFLICTS, CLAIMS

from .conftest import Scrape


def drawn() -> Scrape:
    return Scrape(exposition.render().decode())


def test_a_counter_adds_up_per_label_set():
    metrics.inc(CLAIMS, "instance")
    metrics.inc(CLAIMS, "instance")
    metrics.inc(CLAIMS, "move", amount=3)

    scrape = drawn()
    assert scrape.value("kumo_claims_total", kind="instance") == 2
    assert scrape.value("kumo_claims_total", kind="move") == 3


def test_a_histogram_is_drawn_cumulative_with_its_count_sum_and_plain_counter():
    labels = ("compute", "compute/v2.1/servers", "GET", "200")
    for seconds in (0.003, 0.003, 0.2, 90.0):
        metrics.observe(API_REQUEST_SECONDS, seconds, *labels)

    scrape = drawn()
    series = dict(zip(("api", "route", "method", "status"), labels, strict=True))
    bucket = "kumo_api_request_duration_seconds_bucket"
    assert scrape.value(bucket, le="0.0025", **series) == 0
    assert scrape.value(bucket, le="0.005", **series) == 2
    assert scrape.value(bucket, le="0.25", **series) == 3
    assert scrape.value(bucket, le="60.0", **series) == 3
    assert scrape.value(bucket, le="+Inf", **series) == 4
    assert scrape.value("kumo_api_request_duration_seconds_count", **series) == 4
    assert scrape.value("kumo_api_request_duration_seconds_sum", **series) == pytest.approx(90.206)
    assert scrape.value("kumo_api_requests_total", **series) == 4


def test_an_observation_on_a_bucket_bound_falls_in_that_bucket():
    metrics.observe(API_REQUEST_SECONDS, 0.005, "compute", "r", "GET", "200")
    scrape = drawn()
    assert scrape.value("kumo_api_request_duration_seconds_bucket", le="0.0025") == 0
    assert scrape.value("kumo_api_request_duration_seconds_bucket", le="0.005") == 1


def test_every_recorded_family_is_drawn_even_before_anything_was_counted():
    names = {family.name for family in drawn_families()}
    assert {"kumo_api_request_duration_seconds", "kumo_api_requests",
            "kumo_scheduler_decision_duration_seconds", "kumo_scheduler_decisions",
            "kumo_scheduler_no_valid_host", "kumo_scheduler_hosts_removed", "kumo_claims",
            "kumo_claim_conflicts", "kumo_task_duration_seconds",
            "kumo_task_queue_wait_seconds"} <= names


def drawn_families():
    from prometheus_client.parser import text_string_to_metric_families

    return list(text_string_to_metric_families(exposition.render().decode()))


def test_a_batch_sends_everything_it_gathered_in_one_round_trip(clean_store, monkeypatch):
    calls = []
    real_add = clean_store.add
    monkeypatch.setattr(clean_store, "add", lambda inc: (calls.append(dict(inc)), real_add(inc)))

    with metrics.batch():
        metrics.inc(CLAIMS, "instance")
        with metrics.batch():  # a nested batch joins the outer one
            metrics.inc(CLAIMS, "instance")
            metrics.inc(CLAIM_CONFLICTS, "instance", "no_room")
        metrics.observe(API_REQUEST_SECONDS, 0.01, "compute", "r", "GET", "200")
        assert calls == []

    assert len(calls) == 1
    assert drawn().value("kumo_claims_total", kind="instance") == 2


def test_outside_a_batch_each_count_is_sent_at_once(clean_store, monkeypatch):
    calls = []
    monkeypatch.setattr(clean_store, "add", calls.append)
    metrics.inc(CLAIMS, "instance")
    metrics.inc(CLAIMS, "instance")
    assert len(calls) == 2


def test_a_wrong_number_of_labels_is_a_bug_and_says_so():
    with pytest.raises(ValueError, match="kumo_claim_conflicts takes labels"):
        metrics.inc(CLAIM_CONFLICTS, "instance")


def test_a_label_value_is_cut_to_a_bounded_length():
    metrics.inc(CLAIMS, "x" * 1000)
    (labels,) = drawn().labels_of("kumo_claims_total")
    assert len(labels["kind"]) == 128


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_redis_that_cannot_be_reached_costs_one_attempt_then_is_skipped(
    settings, caplog, monkeypatch
):
    settings.KUMO_METRICS_URL = f"redis://127.0.0.1:{_closed_port()}/0"
    settings.KUMO_METRICS_FLUSH_INTERVAL = 0  # each count is sent at once
    attempts = []
    real_execute = redis.client.Pipeline.execute

    def execute(pipe, *args, **kwargs):
        attempts.append(1)
        return real_execute(pipe, *args, **kwargs)

    monkeypatch.setattr(redis.client.Pipeline, "execute", execute)

    metrics.inc(CLAIMS, "instance")  # no exception reaches the caller
    started = time.monotonic()
    for _ in range(100):
        metrics.inc(CLAIMS, "instance")
    assert time.monotonic() - started < 0.1
    assert attempts == [1]
    assert "metrics not recorded" in caplog.text


KEY = "kumo:metrics:example"


def test_a_buffered_store_sends_what_it_gathered_in_one_call_at_a_read(monkeypatch):
    inner = store.MemoryStore()
    calls = []
    real_add = inner.add
    monkeypatch.setattr(inner, "add", lambda inc: (calls.append(dict(inc)), real_add(inc)))
    buffered = store.BufferedStore(inner, interval=3600)

    buffered.add({(KEY, "a"): 1})
    buffered.add({(KEY, "a"): 2, (KEY, "b"): 1.5})
    assert calls == []

    assert buffered.read([KEY]) == {KEY: {"a": "3", "b": "1.5"}}
    assert calls == [{(KEY, "a"): 3, (KEY, "b"): 1.5}]


def test_a_buffered_store_sends_on_its_own_every_interval():
    inner = store.MemoryStore()
    buffered = store.BufferedStore(inner, interval=0.05)
    buffered.add({(KEY, "a"): 1})
    deadline = time.monotonic() + 5
    while not inner.read([KEY])[KEY] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert inner.read([KEY]) == {KEY: {"a": "1"}}


def test_redis_is_buffered_unless_the_interval_is_zero(settings):
    settings.KUMO_METRICS_URL = "redis://127.0.0.1:1/0"
    assert isinstance(store.current(), store.BufferedStore)
    settings.KUMO_METRICS_FLUSH_INTERVAL = 0
    assert isinstance(store.current(), store.RedisStore)


def test_off_records_nothing(settings):
    settings.KUMO_METRICS_URL = "off"
    metrics.inc(CLAIMS, "instance")
    assert drawn().value("kumo_claims_total") == 0
