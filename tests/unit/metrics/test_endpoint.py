"""GET /metrics: who may scrape, what the API middleware records, and a scrape that never fails
because one part could not be read."""

from __future__ import annotations

import pytest
from django.test import Client

from cloud import metrics
from cloud.metrics import exposition

pytestmark = pytest.mark.django_db

SERVER = "5b3c6a52-0f7e-4d43-9d7e-3f4a1f9d0c11"


@pytest.fixture
def only_elsewhere(settings):
    """/metrics open to 192.0.2.0/24 only, with a scrape token."""
    settings.KUMO_METRICS_ALLOWED_NETS = ["192.0.2.0/24"]
    settings.KUMO_METRICS_TOKEN = "s3cret-scrape-token"
    settings.CELERY_BROKER_URL = "memory://"


def test_loopback_may_scrape_by_default_and_gets_the_text_format(scrape):
    response = Client().get("/metrics", REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    assert "# TYPE kumo_api_request_duration_seconds histogram" in response.content.decode()
    assert Client().get("/metrics", REMOTE_ADDR="::1").status_code == 200


def test_another_address_is_refused_with_403(only_elsewhere):
    response = Client().get("/metrics", REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 403
    assert b"kumo_" not in response.content


def test_an_allowed_network_may_scrape_ipv4_mapped_or_not(only_elsewhere):
    assert Client().get("/metrics", REMOTE_ADDR="192.0.2.7").status_code == 200
    assert Client().get("/metrics", REMOTE_ADDR="::ffff:192.0.2.7").status_code == 200


def test_the_scrape_token_opens_it_from_anywhere_and_a_wrong_one_does_not(only_elsewhere):
    client = Client()
    ok = client.get("/metrics", REMOTE_ADDR="198.51.100.1",
                    HTTP_AUTHORIZATION="Bearer s3cret-scrape-token")
    assert ok.status_code == 200
    for header in ("Bearer s3cret-scrape-tokem", "Bearer ", "Basic s3cret-scrape-token",
                   "s3cret-scrape-token"):
        refused = client.get("/metrics", REMOTE_ADDR="198.51.100.1", HTTP_AUTHORIZATION=header)
        assert refused.status_code == 403, header


def test_no_token_configured_means_no_bearer_gets_in(settings):
    settings.KUMO_METRICS_ALLOWED_NETS = ["192.0.2.0/24"]
    settings.KUMO_METRICS_TOKEN = ""
    response = Client().get("/metrics", REMOTE_ADDR="198.51.100.1", HTTP_AUTHORIZATION="Bearer ")
    assert response.status_code == 403


def test_a_misspelled_allowed_network_is_ignored_not_a_500(settings, scrape):
    settings.KUMO_METRICS_ALLOWED_NETS = ["not-a-network", "127.0.0.1/32"]
    assert Client().get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200
    assert Client().get("/metrics", REMOTE_ADDR="10.1.1.1").status_code == 403


def test_only_get_and_head(scrape):
    assert Client().post("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 405
    assert Client().head("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200


def test_requests_are_counted_by_route_pattern_never_by_raw_path(scrape):
    client = Client()
    client.get(f"/compute/v2.1/servers/{SERVER}")
    client.get("/compute/v2.1/servers/another-id")
    client.get("/no/such/page")
    client.generic("BREW", "/identity")

    after = scrape()
    route = "compute/v2.1/servers/<str:server_id>"
    assert after.value("kumo_api_requests_total", api="compute", route=route, method="GET",
                       status="401") == 2
    assert after.value("kumo_api_requests_total", route="unmatched", status="404") == 1
    assert after.value("kumo_api_requests_total", api="identity", method="other") == 1
    assert SERVER not in after.text and "another-id" not in after.text
    assert after.value("kumo_api_request_duration_seconds_count", route=route) == 2


def test_a_scrape_counts_itself_for_the_next_one(scrape):
    scrape()
    assert scrape().value("kumo_api_requests_total", api="metrics", route="metrics",
                          status="200") == 1


def test_a_failing_collector_is_flagged_and_the_rest_still_answers(scrape, monkeypatch):
    def broken():
        raise RuntimeError("the database is away")

    monkeypatch.setitem(exposition._collectors, "broken", broken)
    after = scrape()
    assert after.value("kumo_metrics_collector_up", collector="broken") == 0
    assert after.value("kumo_metrics_collector_up", collector="recorded") == 1
    assert after.value("kumo_metrics_collector_up", collector="compute") == 1
    assert "# TYPE kumo_instances gauge" in after.text


def test_a_registered_collector_shows_up_in_the_scrape(scrape, monkeypatch):
    from prometheus_client.core import GaugeMetricFamily

    def guests():
        family = GaugeMetricFamily("kumo_example_guests", "An example.", labels=["host"])
        family.add_metric(["compute-1"], 3)
        yield family

    monkeypatch.setattr(exposition, "_collectors", dict(exposition._collectors))
    metrics.register_collector("example", guests)
    after = scrape()
    assert after.value("kumo_example_guests", host="compute-1") == 3
    assert after.value("kumo_metrics_collector_up", collector="example") == 1
