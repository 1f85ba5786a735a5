"""The scheduler's tests decide batches of a known size: the time per boot a batch measures
(cloud/scheduler/batch.py) starts afresh for each test, so what one slow test measured does not
shrink the next test's batches. test_batch_budget.py tests the budget itself."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cloud.scheduler import batch


@pytest.fixture(autouse=True)
def _batch_time_per_boot_afresh() -> Iterator[None]:
    batch.time_per_boot.reset()
    yield
    batch.time_per_boot.reset()
