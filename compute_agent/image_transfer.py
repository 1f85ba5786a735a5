"""HTTP to the image API: download an image, upload a snapshot. Standard library only.

The token travels only in the X-Auth-Token header. It is never put in a message, a log line or an
exception text: errors name the URL's host and path and the HTTP status, nothing more.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import BinaryIO

from compute_agent.drivers.base import DriverError

CHUNK = 1024 * 1024
TIMEOUT = 60.0  # per socket operation, not for the whole transfer


class TransferError(DriverError):
    pass


def _checked_url(url: str) -> str:
    # urllib also opens file:// and ftp:// URLs; a request must never make us read a local file.
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise TransferError(f"not an http(s) URL: {_shown(url)!r}")
    return url


def _shown(url: str) -> str:
    """The URL without user info or query string, fit for a message."""
    parsed = urllib.parse.urlsplit(url)
    host = parsed.hostname or ""
    if parsed.port:
        host = f"{host}:{parsed.port}"
    return urllib.parse.urlunsplit((parsed.scheme, host, parsed.path, "", ""))


def _headers(token: str) -> dict[str, str]:
    headers = {"User-Agent": "kumo-compute-agent"}
    if token:
        headers["X-Auth-Token"] = token
    return headers


def _failure(what: str, url: str, exc: Exception) -> TransferError:
    if isinstance(exc, urllib.error.HTTPError):
        return TransferError(f"{what} {_shown(url)} failed: HTTP {exc.code} {exc.reason}")
    reason = getattr(exc, "reason", exc)
    return TransferError(f"{what} {_shown(url)} failed: {reason}")


def download(url: str, token: str, target: BinaryIO, *, timeout: float = TIMEOUT) -> tuple[int, str]:
    """Stream `url` into `target`; return (bytes written, MD5 hex digest)."""
    request = urllib.request.Request(_checked_url(url), headers=_headers(token))
    md5 = hashlib.md5(usedforsecurity=False)
    size = 0
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            while chunk := response.read(CHUNK):
                target.write(chunk)
                md5.update(chunk)
                size += len(chunk)
    except (urllib.error.URLError, OSError) as exc:
        raise _failure("download of", url, exc) from None
    return size, md5.hexdigest()


def upload(url: str, token: str, path: str | os.PathLike[str], *, timeout: float = TIMEOUT) -> int:
    """PUT the file at `path` to `url`, streamed from disk; return its size."""
    size = os.path.getsize(path)
    headers = _headers(token) | {
        "Content-Type": "application/octet-stream",
        "Content-Length": str(size),
    }
    with open(path, "rb") as body:
        request = urllib.request.Request(
            _checked_url(url), data=body, headers=headers, method="PUT"
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                response.read()
        except (urllib.error.URLError, OSError) as exc:
            raise _failure("upload to", url, exc) from None
    return size
