"""Which browser pages may open a console websocket (cross-site websocket hijacking defence).

Browsers always send Origin on a websocket handshake, and cookies or not, a page on another site
must not be able to drive a console: the Origin has to be the origin the request was addressed to
(the console page's own origin, with a Host that Django's ALLOWED_HOSTS accepts), or one of the
configured origins — KUMO_CONSOLE_BASE_URL's, KUMO_PUBLIC_URL's and KUMO_CONSOLE_ALLOWED_ORIGINS.
A handshake without an Origin is not from a browser page, so there is nothing to hijack and the
token alone decides, as in Nova's proxy.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.http.request import split_domain_port, validate_host

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def _origin_key(url: str) -> tuple[str, int] | None:
    """(hostname, port) of an http(s) origin, with the scheme's default port filled in."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return parts.hostname.lower(), port or _DEFAULT_PORTS[parts.scheme]


def configured_origins() -> set[tuple[str, int]]:
    urls = [settings.KUMO_CONSOLE_BASE_URL, settings.KUMO_PUBLIC_URL]
    urls += settings.KUMO_CONSOLE_ALLOWED_ORIGINS
    return {key for key in map(_origin_key, filter(None, urls)) if key is not None}


def origin_allowed(origin: str | None, host: str | None, *, secure: bool = False) -> bool:
    """Whether a handshake with this Origin header, sent to this Host header (over TLS when
    `secure`), may go on. Behind a proxy that ends TLS, name the public origin in
    KUMO_PUBLIC_URL or KUMO_CONSOLE_ALLOWED_ORIGINS."""
    if origin is None:
        return True
    key = _origin_key(origin)
    if key is None:
        return False  # "null" (sandboxed frames, file://) or garbage: never a console page
    if key in configured_origins():
        return True
    if not host:
        return False
    domain, port = split_domain_port(host)
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return False
    # The port the request came to: the Host header's, or the default of its own scheme.
    request_port = int(port) if port else (443 if secure else 80)
    # Django keeps an IPv6 literal's brackets; urlsplit's hostname has none.
    return key == (domain.strip("[]").lower(), request_port)
