import pytest

from tests.unit.api.conftest import admin, api_as, member, other, reader  # noqa: F401 - personas

from .fakes import FakeVnc


@pytest.fixture
def vnc():
    server = FakeVnc()
    yield server
    server.close()


@pytest.fixture
def other_vnc():
    """A second guest's VNC server: the port a token for the first must never reach."""
    server = FakeVnc()
    yield server
    server.close()
