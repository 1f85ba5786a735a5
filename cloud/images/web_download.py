"""Fetching an image from a URL for Glance's `web-download` import, refused early and clearly.

Kumo fetches on the user's behalf, so a URL must not turn it into a probe of its own network: as
Glance's import filtering does by default, only http and https on ports 80 and 443 are fetched,
and only from public addresses. An operator lets more through by naming hosts, each optionally
with a port, in KUMO_IMAGE_IMPORT_ALLOWED_HOSTS (a mirror on the management network, say): a
named host may be at any address, on any port (or the one given).

The host name is resolved once, every address it has is checked, and the connection goes to the
address that was checked (so a name cannot change its answer between the check and the fetch).
Redirects are not followed. Whatever goes wrong before the first byte — a name that does not
resolve, a host that does not answer, an HTTP error — is a DownloadRefused whose message names the
URL, so the import is refused at once (400) instead of failing later out of sight.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from collections.abc import Iterator
from urllib.parse import urlsplit

from django.conf import settings

CHUNK_SIZE = 1024 * 1024
DEFAULT_PORTS = {"http": 80, "https": 443}
ALLOWED_PORTS = (80, 443)


class DownloadRefused(Exception):
    """The URL is not fetched: its message says why, and names the URL."""


def _allowed_hosts() -> list[tuple[str, int | None]]:
    """KUMO_IMAGE_IMPORT_ALLOWED_HOSTS as (host, port or None): `host`, `host:port`, `[v6]`,
    `[v6]:port`."""
    allowed = []
    for entry in getattr(settings, "KUMO_IMAGE_IMPORT_ALLOWED_HOSTS", ()):
        parts = urlsplit(f"//{str(entry).strip().lower()}")
        allowed.append((parts.hostname or "", parts.port))
    return allowed


def _named(host: str, port: int) -> bool:
    return any(h == host and p in (None, port) for h, p in _allowed_hosts())


def _timeout() -> float:
    return float(getattr(settings, "KUMO_IMAGE_IMPORT_TIMEOUT", 30))


class _PinnedHTTP(http.client.HTTPConnection):
    """An HTTP connection to an address checked beforehand, whatever the host name says now."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self.address = address

    def connect(self) -> None:
        sock = socket.create_connection((self.address, self.port), self.timeout)
        # The certificate is checked against the host name, not the address.
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def check(uri: str) -> tuple[str, str, int, list[str]]:
    """(scheme, host, port, addresses) of a URL Kumo may fetch; DownloadRefused otherwise."""
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        raise DownloadRefused(f"The URI {uri} is not a valid URL.") from None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if scheme not in DEFAULT_PORTS or not host:
        raise DownloadRefused(f"The URI {uri} does not pass filtering: only http and https URLs "
                              "of a host are fetched.")
    port = port or DEFAULT_PORTS[scheme]
    named = _named(host, port)
    if not named and port not in ALLOWED_PORTS:
        raise DownloadRefused(f"The URI {uri} does not pass filtering: port {port} is not "
                              f"allowed (only {', '.join(map(str, ALLOWED_PORTS))}).")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise DownloadRefused(f"Could not reach {uri}: the host name {host} does not resolve "
                              f"({getattr(exc, 'strerror', None) or exc}).") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not named:
        for address in addresses:
            if not ipaddress.ip_address(address.split("%")[0]).is_global:
                raise DownloadRefused(f"The URI {uri} does not pass filtering: {host} is not a "
                                      "public address.")
    return scheme, host, port, addresses


def fetch(uri: str) -> tuple[Iterator[bytes], int | None]:
    """The body of `uri` as chunks, and its Content-Length (None when it sends none)."""
    scheme, host, port, addresses = check(uri)
    parts = urlsplit(uri)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    kind = _PinnedHTTPS if scheme == "https" else _PinnedHTTP
    last_error: Exception | None = None
    for address in addresses:
        connection = kind(host, port, address, _timeout())
        try:
            connection.request("GET", target, headers={"User-Agent": "kumo-image-import"})
            response = connection.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            last_error = exc
            continue
        if response.status != 200:
            connection.close()
            raise DownloadRefused(f"Could not download {uri}: the server answered "
                                  f"{response.status} {response.reason}.")
        length = response.getheader("Content-Length")
        return _body(connection, response), int(length) if length and length.isdigit() else None
    raise DownloadRefused(f"Could not reach {uri}: {last_error}.")


def _body(connection: http.client.HTTPConnection, response: http.client.HTTPResponse
          ) -> Iterator[bytes]:
    try:
        while chunk := response.read(CHUNK_SIZE):
            yield chunk
    except http.client.HTTPException as exc:
        # The upload machinery takes an OSError for a body cut short.
        raise OSError(f"the download broke off: {exc}") from None
    finally:
        connection.close()
