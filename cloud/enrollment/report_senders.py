"""Who sent a host's report, and whether it may speak for the host it names.

The conductor asks `accepts()` before applying a host report or an instance event. The sender is

- on RabbitMQ, the message's `user_id`: the broker refuses a publish whose user_id is not the
  publisher's own user, so it names the host whose credential sent it;
- otherwise (Redis vouches for no sender), the host whose secret signed the message
  (compute_agent.messages.report_signature, in the message's headers);
- nobody, for a host without a credential of its own (it shares the control plane's broker user:
  the simulated hosts of `make run HOSTS=3`, test stacks, the single-host default).

A report is applied when its sender is the host it names; a report from nobody only when that host
has no credential and KUMO_REQUIRE_HOST_CREDENTIALS is off. Anything else is refused and logged,
without any secret.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

from django.conf import settings

from compute_agent import messages as msg

from . import uncredentialed
from .host_credentials import secret_of
from .models import HostCredential

log = logging.getLogger(__name__)


class TaskRequest(Protocol):
    """What a Celery task's `self.request` offers: the message's properties (AMQP's user_id
    among them) and its custom headers."""

    properties: Mapping[str, Any] | None
    headers: Mapping[str, Any] | None


class Refused(Exception):
    pass


def _broker_checks_user_id() -> bool:
    return urlsplit(settings.CELERY_BROKER_URL).scheme in ("amqp", "amqps", "pyamqp")


def sender_of(request: TaskRequest, task_name: str, payload: dict[str, Any]) -> str | None:
    """The host whose credential sent this message, or None when it came without one.
    Refused when it claims a host it cannot prove."""
    properties = getattr(request, "properties", None) or {}
    user_id = properties.get("user_id") if _broker_checks_user_id() else None
    if user_id:
        credential = HostCredential.objects.filter(broker_user=user_id).first()
        if credential is not None:
            return credential.host
    headers = getattr(request, "headers", None) or {}
    signer = headers.get(msg.SIGNER_HEADER)
    if signer is None:
        return None
    credential = HostCredential.objects.filter(host=str(signer)).first()
    if credential is None:
        raise Refused(f"signed by host {signer!r}, which has no credential")
    signature = headers.get(msg.SIGNATURE_HEADER)
    expected = msg.report_signature(secret_of(credential), credential.host, task_name, payload)
    if not isinstance(signature, str) or not hmac.compare_digest(signature, expected):
        raise Refused(f"the signature of host {signer!r} does not verify")
    return credential.host


def accepts(request: TaskRequest, task_name: str, payload: dict[str, Any], host: str) -> bool:
    """Whether the conductor may apply this message, which speaks for `host`."""
    try:
        sender = sender_of(request, task_name, payload)
    except Refused as refusal:
        return _refuse(task_name, host, str(refusal))
    if sender is not None:
        if sender == host:
            return True
        return _refuse(task_name, host, f"sent with the credential of host {sender!r}")
    if settings.KUMO_REQUIRE_HOST_CREDENTIALS:
        return _refuse(task_name, host, "sent without a host credential, and "
                                        "KUMO_REQUIRE_HOST_CREDENTIALS is on")
    if _has_credential(host):
        return _refuse(task_name, host, "sent without the credential this host joined with")
    return True


def _has_credential(host: str) -> bool:
    # A host seen without one a moment ago, with no credential written anywhere since, still has
    # none: one read of the shared cache instead of a query per message (uncredentialed.py).
    generation = uncredentialed.current_generation()
    if uncredentialed.known_without(host, generation):
        return False
    if HostCredential.objects.filter(host=host).exists():
        return True
    uncredentialed.remember_without(host, generation)
    return False


def _refuse(task_name: str, host: str, reason: str) -> bool:
    log.warning("refused %s for host %r: %s", task_name, host, reason)
    return False
