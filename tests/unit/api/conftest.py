"""Fixtures of the API tests."""

import pytest


@pytest.fixture
def mv2104(monkeypatch):
    """The API as it answers with microversions up to 2.104 (the ceiling it advertises once every
    version is in)."""
    from cloud.api import microversion

    monkeypatch.setattr(microversion, "MAX_VERSION", microversion.APIVersion(2, 104))
