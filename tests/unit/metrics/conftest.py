"""What the metrics tests share: a clean process-local store, and /metrics read as numbers."""

from __future__ import annotations

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from cloud.metrics import store


class Scrape:
    """One answer of /metrics, parsed: every sample by name and labels."""

    def __init__(self, text: str):
        self.text = text
        self.samples = [
            (sample.name, sample.labels, sample.value)
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        ]

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples called `name` whose labels include `labels` (0 if none)."""
        return sum(
            v for n, have, v in self.samples
            if n == name and all(have.get(k) == want for k, want in labels.items())
        )

    def names(self) -> set[str]:
        return {n for n, _, _ in self.samples}

    def labels_of(self, name: str) -> list[dict[str, str]]:
        return [have for n, have, _ in self.samples if n == name]


@pytest.fixture(autouse=True)
def clean_store(settings):
    settings.KUMO_METRICS_URL = "memory://"
    recorded = store.current()
    assert isinstance(recorded, store.MemoryStore)
    recorded.clear()
    yield recorded
    recorded.clear()


@pytest.fixture
def scrape(settings):
    # No broker in unit tests: kombu's in-memory transport answers the queue depths.
    settings.CELERY_BROKER_URL = "memory://"

    def scrape() -> Scrape:
        response = Client().get("/metrics", REMOTE_ADDR="127.0.0.1")
        assert response.status_code == 200, response.content
        return Scrape(response.content.decode())

    return scrape
