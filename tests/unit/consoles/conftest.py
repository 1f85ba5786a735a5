import pytest

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
