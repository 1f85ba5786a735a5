"""Compute API microversions: which one a request asked for, and echoing it back.

A request without a version header is at 2.1. Bodies are built for the requested version, because
strict clients (Tempest) reject keys their version does not define.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache, total_ordering

from django.http import HttpRequest

from cloud.errors import BadRequest, NotAcceptable

_VERSION_RE = re.compile(r"^([1-9]\d*)\.([1-9]\d*|0)$")


@total_ordering
@dataclass(frozen=True)
class APIVersion:
    major: int
    minor: int

    @classmethod
    def parse(cls, text: str) -> APIVersion:
        match = _VERSION_RE.match(text.strip())
        if not match:
            raise BadRequest(f"Version string {text!r} is not valid.")
        return cls(int(match.group(1)), int(match.group(2)))

    def __lt__(self, other: APIVersion) -> bool:
        return (self.major, self.minor) < (other.major, other.minor)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"

    def at_least(self, text: str) -> bool:
        # Asked a dozen times per server of a list: compare tuples, each literal parsed once.
        return (self.major, self.minor) >= _parsed(text)


@lru_cache(maxsize=512)
def _parsed(text: str) -> tuple[int, int]:
    version = APIVersion.parse(text)
    return version.major, version.minor


MIN_VERSION = APIVersion(2, 1)
MAX_VERSION = APIVersion(2, 104)
DEFAULT_VERSION = MIN_VERSION


def requested_version(request: HttpRequest) -> APIVersion:
    """The version from `OpenStack-API-Version: compute X` or the legacy Nova header."""
    text = None
    header = request.META.get("HTTP_OPENSTACK_API_VERSION")
    if header:
        for part in header.split(","):
            service, _, value = part.strip().partition(" ")
            if service.lower() == "compute" and value:
                text = value.strip()
    if text is None:
        text = request.META.get("HTTP_X_OPENSTACK_NOVA_API_VERSION")
    if not text:
        return DEFAULT_VERSION
    if text.lower() == "latest":
        return MAX_VERSION
    version = APIVersion.parse(text)
    if not MIN_VERSION <= version <= MAX_VERSION:
        raise NotAcceptable(
            f"Version {version} is not supported by the API. "
            f"Minimum is {MIN_VERSION} and maximum is {MAX_VERSION}."
        )
    return version


def version_headers(version: APIVersion) -> dict[str, str]:
    return {
        "OpenStack-API-Version": f"compute {version}",
        "X-OpenStack-Nova-API-Version": str(version),
        "Vary": "OpenStack-API-Version, X-OpenStack-Nova-API-Version",
    }
