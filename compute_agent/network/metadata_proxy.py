"""The metadata proxy: 169.254.169.254:80 inside each DHCP namespace, answered by the control plane.

A guest reaches 169.254.169.254 through its host's DHCP server: dnsmasq hands out the route
`169.254.169.254/32 via <dhcp_ip>` (option 121) and the DHCP namespace holds 169.254.169.254/32
on its loopback (compute_agent.network.dhcp). In that namespace this module listens on port 80;
the serving is done by the agent process itself, which stays in the machine's namespace, where
the control plane's internal URL is reached.

Why a socket made inside the namespace and no process of its own there: a network namespace is
per thread in Linux, and a socket keeps the namespace it was made in. A short-lived thread
enters the namespace of the dnsmasq process (setns on /proc/<pid>/ns/net), makes, binds and
listens on the socket and ends; the agent then accepts on it from any thread. No proxy process
per network to start, adopt and reap, and no route from the DHCP namespace to the control plane
(the namespace stays as isolated as before: it holds its leg and nothing else).

Who is asking is known from the socket alone: the network from which namespace's socket accepted
the connection, the guest from the connection's source address, which the host's anti-spoofing
rules (ebtables/iptables per port) guarantee is one the guest's port may send from. Nothing the
guest sends (headers, path) can claim another identity. Both go to the control plane signed
(compute_agent.messages.metadata_signature): with the host's own secret when it joined, else with
the deployment's shared metadata secret. The control plane looks the port up and answers.

A listening socket holds its namespace alive: the listener is closed before its dnsmasq is
stopped (dhcp.DhcpServers calls `stop`), or the namespace, its veth and the leg in the bridge
would outlive the server. Requests time out quickly for the same reason.
"""

from __future__ import annotations

import ctypes
import logging
import os
import socket
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from compute_agent import messages as msg

LOG = logging.getLogger(__name__)

PORT = 80
_CLONE_NEWNET = 0x40000000
_UPSTREAM_TIMEOUT = 10.0
_CLIENT_TIMEOUT = 10.0  # a guest that stalls keeps a connection (and the namespace) no longer
_MAX_PATH = 1024
_PASSED_HEADERS = ("Content-Type",)


def _setns(fd: int) -> None:
    # os.setns only exists from Python 3.12.
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, _CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))


def listen_in_namespace_of(pid: int, address: str, port: int) -> socket.socket:
    """A TCP socket listening on address:port in the network namespace of process `pid`.

    Made by a thread of its own that enters the namespace and ends there: the calling thread,
    and every other thread of the agent, stay in the machine's namespace."""
    result: dict[str, Any] = {}

    def work() -> None:
        try:
            fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            try:
                _setns(fd)
            finally:
                os.close(fd)
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((address, port))
                sock.listen(64)
            except OSError:
                sock.close()
                raise
            result["socket"] = sock
        except OSError as exc:  # handed to the caller
            result["error"] = exc

    thread = threading.Thread(target=work, name=f"netns-{pid}", daemon=True)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    sock: socket.socket = result["socket"]
    return sock


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, sock: socket.socket, proxy: MetadataProxy, network_id: str,
                 pid: int) -> None:
        super().__init__(sock.getsockname()[:2], _Handler, bind_and_activate=False)
        self.socket.close()  # the one the base class made, in the agent's own namespace
        self.socket = sock
        self.server_address = sock.getsockname()[:2]
        self.proxy, self.network_id, self.pid = proxy, network_id, pid


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = _CLIENT_TIMEOUT
    server_version = "kumo-metadata"
    sys_version = ""
    protocol_version = "HTTP/1.0"

    def do_GET(self) -> None:
        self._answer(body=True)

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def _answer(self, *, body: bool) -> None:
        path = self.path.split("?", 1)[0].split("#", 1)[0]
        if not _acceptable(path):
            self._reply(400, b"Bad Request\n", {"Content-Type": "text/plain"}, body)
            return
        # The socket's peer: what the anti-spoofing rules guarantee; no header is believed.
        address = str(self.client_address[0])
        status, content, headers = self.server.proxy.forward(self.server.network_id, address,
                                                             path)
        self._reply(status, content, headers, body)

    def _reply(self, status: int, content: bytes, headers: dict[str, str], body: bool) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        if body:
            self.wfile.write(content)

    def log_message(self, format: str, *args: Any) -> None:
        LOG.debug("metadata %s: " + format, self.server.network_id, *args)


def _acceptable(path: str) -> bool:
    """A plain absolute path: no '.' or '..' segment, nothing unprintable or escaped (the
    signature covers the path as sent, and no metadata path needs a %), not too long."""
    if not path.startswith("/") or path.startswith("//") or len(path) > _MAX_PATH:
        return False
    if any(ord(c) < 0x21 or ord(c) > 0x7e or c in "%\\" for c in path):
        return False
    return not any(part in (".", "..") for part in path.split("/"))


class MetadataProxy:
    """The host's metadata listeners, one per DHCP namespace, forwarding to `url`/metadata/…

    `host` and `secret` sign the forwarded requests: a joined host's name and own secret, or
    host "" with the deployment's shared metadata secret."""

    def __init__(self, url: str, secret: str, host: str = "", *,
                 address: str = msg.METADATA_ADDRESS, port: int = PORT) -> None:
        if not url or not secret:
            raise ValueError("the metadata proxy needs the control plane's URL and a secret")
        self.url = url.rstrip("/")
        self._secret = secret
        self.host = host
        self.address, self.port = address, port
        self._servers: dict[str, _Server] = {}
        self._lock = threading.Lock()

    def serving(self) -> dict[str, int]:
        """Network id -> the pid of the DHCP server whose namespace it listens in."""
        with self._lock:
            return {network_id: s.pid for network_id, s in self._servers.items()}

    def serve(self, network_id: str, pid: int) -> None:
        """Listen in the namespace of DHCP server `pid` for `network_id` (again, if it listened in
        another server's namespace). A failure is logged, never raised: DHCP works without it."""
        with self._lock:
            current = self._servers.get(network_id)
            if current is not None and current.pid == pid:
                return
        self.stop(network_id)
        try:
            sock = listen_in_namespace_of(pid, self.address, self.port)
        except OSError:
            LOG.exception("network %s: no metadata service (cannot listen in the namespace of "
                          "dnsmasq %d)", network_id, pid)
            return
        server = _Server(sock, self, network_id, pid)
        with self._lock:
            self._servers[network_id] = server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.5},
                         name=f"metadata-{network_id[:8]}", daemon=True).start()
        LOG.info("metadata service for network %s in the namespace of dnsmasq %d", network_id,
                 pid)

    def stop(self, network_id: str) -> None:
        """Close the network's listener (nothing listening is no error)."""
        with self._lock:
            server = self._servers.pop(network_id, None)
        if server is not None:
            server.shutdown()
            server.server_close()

    def stop_all(self) -> None:
        for network_id in list(self.serving()):
            self.stop(network_id)

    def forward(self, network_id: str, address: str, path: str) -> tuple[int, bytes,
                                                                          dict[str, str]]:
        """Ask the control plane for `path` on behalf of `address` on `network_id`: its status,
        body and the headers passed on to the guest."""
        timestamp = str(int(time.time()))
        headers = {
            msg.METADATA_NETWORK_HEADER: network_id,
            msg.METADATA_ADDRESS_HEADER: address,
            msg.METADATA_SIGNER_HEADER: self.host,
            msg.METADATA_TIME_HEADER: timestamp,
            msg.METADATA_SIGNATURE_HEADER: msg.metadata_signature(
                self._secret, self.host, network_id, address, path, timestamp),
        }
        request = urllib.request.Request(self.url + msg.METADATA_PREFIX + path, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=_UPSTREAM_TIMEOUT) as response:
                return response.status, response.read(), _passed(response.headers)
        except urllib.error.HTTPError as exc:
            content = exc.read()
            return exc.code, content, _passed(exc.headers)
        except (urllib.error.URLError, OSError) as exc:
            LOG.warning("metadata request of %s on network %s: the control plane did not "
                        "answer: %s", address, network_id, exc)
            return 502, b"Bad Gateway\n", {"Content-Type": "text/plain"}


def _passed(headers: Any) -> dict[str, str]:
    return {name: headers[name] for name in _PASSED_HEADERS if headers.get(name)}
