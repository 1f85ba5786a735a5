"""The metadata service's edge: /metadata/<path>, asked by the hosts' metadata proxies only.

Guests reach 169.254.169.254 in their host's DHCP namespace; the host's proxy
(compute_agent/network/metadata_proxy.py) forwards the request here, signed, with the network and
source address it saw. This view checks the signature (cloud.enrollment.metadata_senders: 403 when
it does not verify), finds the guest (cloud.compute.metadata: 404 for an address no instance holds
on that network) and answers with the document. Plain text and JSON, as OpenStack's metadata
service answers; no OpenStack error bodies (a guest's tools read the status). Neither user data
nor keys are ever logged.
"""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from cloud import errors
from cloud.compute import metadata
from cloud.enrollment import metadata_senders

log = logging.getLogger(__name__)


@csrf_exempt
def metadata_view(request: HttpRequest, path: str = "") -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        response = HttpResponse("Method Not Allowed\n", status=405, content_type="text/plain")
        response["Allow"] = "GET, HEAD"
        return response
    path = path or "/"
    try:
        claim = metadata_senders.verify(request.headers, path)
    except metadata_senders.Refused as refusal:
        log.warning("metadata request for %s refused: %s", path, refusal)
        return HttpResponse("Forbidden\n", status=403, content_type="text/plain")
    try:
        guest = metadata.find_guest(claim.network_id, claim.address, claim.host)
        document = metadata.answer(guest, path)
    except errors.NotFound:
        return HttpResponse("Not Found\n", status=404, content_type="text/plain")
    log.info("metadata %s for instance %s (%s on network %s)", path, guest.instance.uuid,
             claim.address, claim.network_id)
    return HttpResponse(document.body, content_type=document.content_type)
