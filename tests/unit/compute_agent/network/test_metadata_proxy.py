"""The agent's metadata proxy without namespaces (compute_agent/network/metadata_proxy.py): which
secret an agent signs with, which paths it passes on, what it sends upstream. With real
namespaces and a guest: tests/integration/test_metadata_proxy.py."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from compute_agent import messages as msg
from compute_agent.network import metadata_proxy
from compute_agent.network.metadata_proxy import MetadataProxy
from compute_agent.worker import AgentConfig


def test_a_joined_host_signs_as_itself_any_other_with_the_shared_secret() -> None:
    joined = metadata_proxy_of(host_secret="own", metadata_secret="shared")
    assert joined is not None and (joined.host, joined._secret) == ("compute-1", "own")
    shared = metadata_proxy_of(metadata_secret="shared")
    assert shared is not None and (shared.host, shared._secret) == ("", "shared")
    # No secret, no URL, or no data plane: no metadata service (guests keep the config drive).
    assert metadata_proxy_of() is None
    assert metadata_proxy_of(metadata_secret="shared", internal_url="") is None
    assert metadata_proxy_of(metadata_secret="shared", network_driver="user") is None


def metadata_proxy_of(**fields: str) -> MetadataProxy | None:
    from compute_agent.worker import metadata_proxy as build

    values = {"host": "compute-1", "network_driver": "linuxbridge",
              "internal_url": "http://127.0.0.1:8000", **fields}
    return build(AgentConfig(**values))  # type: ignore[arg-type]


@pytest.mark.parametrize("path,ok", [
    ("/openstack/latest/meta_data.json", True),
    ("/latest/meta-data/public-keys/0/openssh-key", True),
    ("/", True),
    ("/openstack/../../identity/v3", False),
    ("/openstack/./latest", False),
    ("//evil.example/x", False),
    ("/openstack/%2e%2e/x", False),
    ("relative", False),
    ("/a b", False),
    ("/" + "a" * 2000, False),
])
def test_only_plain_absolute_paths_are_passed_on(path: str, ok: bool) -> None:
    assert metadata_proxy._acceptable(path) is ok


@pytest.fixture
def upstream() -> Iterator[tuple[str, list[dict[str, str]]]]:
    seen: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append({"path": self.path, **{k: v for k, v in self.headers.items()}})
            status = 404 if self.path.endswith("/user_data") else 200
            body = b"{}" if status == 200 else b"Not Found\n"
            self.send_response(status)
            self.send_header("Content-Type", "application/json" if status == 200
                             else "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


def test_a_forwarded_request_names_network_and_address_signed(upstream) -> None:
    url, seen = upstream
    proxy = MetadataProxy(url, "s3cret", "compute-1")
    status, body, headers = proxy.forward("net-1", "10.0.0.5", "/openstack/latest/meta_data.json")
    assert (status, body, headers) == (200, b"{}", {"Content-Type": "application/json"})
    (request,) = seen
    assert request["path"] == "/metadata/openstack/latest/meta_data.json"
    assert request[msg.METADATA_NETWORK_HEADER] == "net-1"
    assert request[msg.METADATA_ADDRESS_HEADER] == "10.0.0.5"
    assert request[msg.METADATA_SIGNER_HEADER] == "compute-1"
    assert request[msg.METADATA_SIGNATURE_HEADER] == msg.metadata_signature(
        "s3cret", "compute-1", "net-1", "10.0.0.5", "/openstack/latest/meta_data.json",
        request[msg.METADATA_TIME_HEADER])
    # The control plane's status reaches the guest as it is.
    assert proxy.forward("net-1", "10.0.0.5", "/openstack/latest/user_data")[0] == 404


def test_a_control_plane_that_does_not_answer_is_a_502() -> None:
    proxy = MetadataProxy("http://127.0.0.1:9", "s3cret")
    status, _, _ = proxy.forward("net-1", "10.0.0.5", "/latest/meta-data/")
    assert status == 502
