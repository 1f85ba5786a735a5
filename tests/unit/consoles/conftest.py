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


@pytest.fixture
def socket_vnc(tmp_path):
    """A guest whose VNC server is a unix socket (a guest of a host in its own namespaces)."""
    server = FakeVnc(path=str(tmp_path / "vnc.sock"))
    yield server
    server.close()
