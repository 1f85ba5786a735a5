"""GET /metrics: everything Kumo measures, in the Prometheus text format, for allowed scrapers.

A scraper is allowed when it connects from an address in KUMO_METRICS_ALLOWED_NETS (default:
loopback) or sends `Authorization: Bearer <KUMO_METRICS_TOKEN>`; anyone else gets 403. The
answer is drawn by cloud.metrics.exposition; a part that cannot be read is left out and flagged
(`kumo_metrics_collector_up` 0) rather than failing the scrape.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_http_methods
from prometheus_client import CONTENT_TYPE_LATEST

from cloud.metrics import exposition

log = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@require_http_methods(["GET", "HEAD"])
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not may_scrape(request):
        return HttpResponse(
            "Forbidden: /metrics answers the addresses in KUMO_METRICS_ALLOWED_NETS and requests "
            "with the scrape token.\n",
            status=403,
            content_type="text/plain; charset=utf-8",
        )
    try:
        body = exposition.render()
    except Exception:
        log.exception("/metrics could not be drawn")
        return HttpResponse("Metrics are unavailable; see the web process's log.\n", status=503,
                            content_type="text/plain; charset=utf-8")
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)


def may_scrape(request: HttpRequest) -> bool:
    token = settings.KUMO_METRICS_TOKEN
    header = request.META.get("HTTP_AUTHORIZATION", "")
    # Constant time: the comparison must not tell how much of a guess was right.
    if (
        token
        and header.startswith("Bearer ")
        and hmac.compare_digest(header[len("Bearer "):].strip().encode(), token.encode())
    ):
        return True
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in net for net in _networks(tuple(settings.KUMO_METRICS_ALLOWED_NETS)))


@lru_cache(maxsize=8)
def _networks(spelled: tuple[str, ...]) -> tuple[Network, ...]:
    networks = []
    for net in spelled:
        try:
            networks.append(ipaddress.ip_network(net, strict=False))
        except ValueError:
            log.warning("KUMO_METRICS_ALLOWED_NETS: %r is not a network; ignored", net)
    return tuple(networks)
