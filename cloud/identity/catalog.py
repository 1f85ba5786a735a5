"""The service catalog a token carries: one public endpoint per service, all on one origin."""

from __future__ import annotations

import hashlib

from django.conf import settings

SERVICES = [
    # (type, name, path under the origin)
    ("identity", "keystone", "/identity"),
    ("compute", "nova", "/compute/v2.1"),
    ("image", "glance", "/image"),
    ("network", "neutron", "/network"),
]


def _id(*parts: str) -> str:
    return hashlib.md5("/".join(parts).encode(), usedforsecurity=False).hexdigest()


def catalog(base_url: str) -> list[dict]:
    region = settings.KUMO_REGION
    entries = []
    for service_type, name, path in SERVICES:
        url = base_url + path
        endpoints = [
            {
                "id": _id(service_type, interface, url),
                "interface": interface,
                "region": region,
                "region_id": region,
                "url": url,
            }
            for interface in ("public", "internal", "admin")
        ]
        entries.append(
            {"type": service_type, "name": name, "id": _id(service_type), "endpoints": endpoints}
        )
    return entries
