"""Shared test setup. Personas for API tests live in tests/personas.py."""

import os

os.environ.setdefault("KUMO_VAR_DIR", os.path.join(os.path.dirname(__file__), "..", "var", "test"))

import pytest

from tests.broker import CommitsRun, Sent


@pytest.fixture(autouse=True)
def _fast_password_hashing(request, settings):
    # Unit tests create many users; the production hasher's cost is exercised in integration tests.
    if "integration" not in request.keywords and "compat" not in request.keywords:
        settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="session")
def stack():
    """One live stack for the whole session: two compute agents with room for 2 GiB each."""
    from tests.stack import AgentSpec, Stack

    live = Stack("stack", agents=[AgentSpec("compute-a"), AgentSpec("compute-b")])
    with live.running():
        yield live


@pytest.fixture(autouse=True)
def _process_local_cache(request, settings):
    # Unit tests run in one process; the shared Redis cache is for the real, multi-process stack.
    if "integration" not in request.keywords and "compat" not in request.keywords:
        settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


@pytest.fixture
def sent(db, monkeypatch) -> list[Sent]:
    """Every message the control plane publishes during the test, in order, with on-commit
    callbacks run as a real commit would run them (tests/broker.py): a message published before
    its transaction commits, or outside one, shows up here; one rolled back does not."""
    recorded: list[Sent] = []

    def send_task(name: str, args: list | None = None, queue: str = "", **_: object) -> None:
        recorded.append(Sent(name, list(args or []), queue))

    from cloud import rpc

    CommitsRun().install(monkeypatch)
    monkeypatch.setattr(rpc.app, "send_task", send_task)
    return recorded
