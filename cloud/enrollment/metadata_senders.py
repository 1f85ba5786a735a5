"""Whether a metadata request really comes from a host's metadata proxy.

A host's proxy (compute_agent/network/metadata_proxy.py) forwards each guest request with the
network and source address it saw, signed (compute_agent.messages.metadata_signature):

- by a joined host, with its own secret and its name as signer: the request may then speak only
  for guests that run on that host (the lookup checks it);
- by a host without a credential of its own, with the deployment's shared KUMO_METADATA_SECRET
  and no signer: refused when KUMO_REQUIRE_HOST_CREDENTIALS is on, or when no secret is set.

Anything else (no signature, a wrong one, a stale timestamp) is refused: the metadata service
is reachable by whoever reaches the internal URL, and without this anyone could read any
guest's user data by naming its address.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

from django.conf import settings

from compute_agent import messages as msg

from .host_credentials import secret_of
from .models import HostCredential

log = logging.getLogger(__name__)


class Refused(Exception):
    """The request is not a host's; the message says why (it holds no secret)."""


@dataclass(frozen=True)
class Claim:
    """What a verified request speaks for."""

    host: str  # the joined host that signed, or "" for the shared secret
    network_id: str
    address: str


def verify(headers: Mapping[str, str], path: str, now: float | None = None) -> Claim:
    """The claim of a request to `path` (the part after /metadata) with these headers."""
    network_id = headers.get(msg.METADATA_NETWORK_HEADER, "")
    address = headers.get(msg.METADATA_ADDRESS_HEADER, "")
    signer = headers.get(msg.METADATA_SIGNER_HEADER, "")
    stamp = headers.get(msg.METADATA_TIME_HEADER, "")
    signature = headers.get(msg.METADATA_SIGNATURE_HEADER, "")
    if not (network_id and address and stamp and signature):
        raise Refused("not signed by a host")
    try:
        skew = abs((time.time() if now is None else now) - int(stamp))
    except ValueError:
        raise Refused("a timestamp that is no number") from None
    if skew > msg.METADATA_MAX_SKEW:
        raise Refused(f"a timestamp {int(skew)} s away from now")
    if signer:
        credential = HostCredential.objects.filter(host=signer).first()
        if credential is None:
            raise Refused(f"signed by host {signer!r}, which has no credential")
        secret = secret_of(credential)
    else:
        if settings.KUMO_REQUIRE_HOST_CREDENTIALS:
            raise Refused("signed with the shared secret, and KUMO_REQUIRE_HOST_CREDENTIALS is on")
        secret = settings.KUMO_METADATA_SECRET
        if not secret:
            raise Refused("signed with the shared secret, and KUMO_METADATA_SECRET is not set")
    expected = msg.metadata_signature(secret, signer, network_id, address, path, stamp)
    if not hmac.compare_digest(signature, expected):
        raise Refused(f"the signature of {('host ' + repr(signer)) if signer else 'the shared secret'}"
                      " does not verify")
    return Claim(host=signer, network_id=network_id, address=address)
