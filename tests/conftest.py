"""Shared test setup. Personas for API tests live in tests/personas.py."""

import os

os.environ.setdefault("KUMO_VAR_DIR", os.path.join(os.path.dirname(__file__), "..", "var", "test"))

import pytest


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
