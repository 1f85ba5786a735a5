"""Console tokens: who may see which instance's screen, through which proxy, for how long.

A token is 32 random bytes handed out once, in the console URL; only its SHA-256 is stored. It is
bound to one instance and to the target the proxy will connect to (the compute host's address and
the VNC port its agent reported, or the unix socket the agent reported instead — a host whose
guests' screens are only reachable on this machine, like a simulated host in its own network
namespace), so the client never names a host, a port or a path. It expires after
KUMO_CONSOLE_TOKEN_TTL seconds and opens at most one session: consume_token() takes it with a
conditional UPDATE, under a lock on the instance row that also caps the instance's open sessions at
KUMO_CONSOLE_MAX_SESSIONS. An open session refreshes `seen_at` each time its proxy re-checks it
(session_alive), so a proxy that died without closing its sessions frees their places after
SESSION_STALE_AFTER seconds.

Both proxies — the Channels consumer in the web process and the standalone websockify proxy
(consoles/) — call the same functions here, so they enforce the same rules.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from cloud import errors
from cloud.identity.context import RequestContext

from . import guest_kinds, states
from .models import ComputeNode, ConsoleToken, Instance

PROTOCOL_VNC = "vnc"
TYPE_NOVNC = "novnc"
# Every protocol and type Nova's schema knows; only vnc/novnc is served, the rest answer 400.
PROTOCOLS = ("vnc", "spice", "rdp", "serial", "mks")
TYPES = ("novnc", "xvpvnc", "rdp-html5", "spice-html5", "serial", "webmks")

# Guests whose screen exists: running, or frozen with their memory in place.
SHOWABLE_VM_STATES = (states.ACTIVE, states.PAUSED, states.RESIZED)

# The one path of the console page; the URL handed out is <base>/console/?token=<token>.
CONSOLE_PATH = "/console/"

# token_urlsafe(32) is 43 characters; anything unlike a token is refused before it is hashed.
_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{32,128}$")


# Why a console was refused: one word each, which the page turns into a sentence.
INVALID = "invalid"  # no such token (or not a token at all)
EXPIRED = "expired"
USED = "used"  # already opened a session
GONE = "gone"  # the instance was deleted
MOVED = "moved"  # the instance is no longer where the token points
NOT_RUNNING = "not_running"  # the guest has no screen now (stopped, suspended, no VNC port yet)
BUSY = "busy"  # the instance has its maximum of open sessions

MESSAGES = {
    # A deleted server's tokens are deleted with it, so "unknown" covers that case too.
    INVALID: "This console link is not valid: it is incomplete, or its server was deleted.",
    EXPIRED: "This console link has expired. Ask for a new one.",
    USED: "This console link was already used. Each link opens one session; ask for a new one.",
    GONE: "The server of this console no longer exists.",
    MOVED: "The server has moved or restarted since this link was made. Ask for a new one.",
    NOT_RUNNING: "The server is not running, so it has no screen to show.",
    BUSY: "The server already has its maximum of open console sessions.",
}


class ConsoleRefused(Exception):
    """A token that may not open (or keep) a session; `reason` is one of the words above."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason

    @property
    def message(self) -> str:
        return MESSAGES[self.reason]


@dataclass(frozen=True)
class ConsoleTarget:
    """Where an accepted session connects, and what it needs to re-check itself."""

    token_id: int
    instance_uuid: str
    instance_name: str
    host: str
    host_address: str
    port: int  # 0 when the target is a unix socket
    socket: str = ""

    @property
    def where(self) -> str:
        """The target for log lines."""
        return self.socket or f"{self.host_address}:{self.port}"


@dataclass(frozen=True)
class TokenState:
    """What the console page shows before it connects: never consumes the token."""

    state: str  # "ready" or one of the refusal words
    instance_name: str = ""

    @property
    def message(self) -> str:
        return "" if self.state == "ready" else MESSAGES[self.state]


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def session_stale_after() -> float:
    """Seconds without a re-check after which an open session no longer counts."""
    return max(30.0, 3 * float(settings.KUMO_CONSOLE_RECHECK_INTERVAL))


def console_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}{CONSOLE_PATH}?token={token}"


def create_console(
    ctx: RequestContext, instance: Instance, protocol: str, console_type: str, base_url: str
) -> str:
    """Issue a token for `instance`'s console and return its URL under `base_url`
    (KUMO_CONSOLE_BASE_URL when set, so the URL can point at a standalone proxy)."""
    guest_kinds.refuse_for_container(instance, guest_kinds.REMOTE_CONSOLE,
                                     f"{protocol} console")
    if (protocol, console_type) != (PROTOCOL_VNC, TYPE_NOVNC):
        raise errors.BadRequest(
            f"Unavailable console type {console_type} (protocol {protocol}): "
            "this cloud serves vnc/novnc consoles only."
        )
    if (
        instance.vm_state not in SHOWABLE_VM_STATES
        or instance.task_state == states.DELETING
        or not instance.host
    ):
        raise errors.Conflict(f"Instance {instance.uuid} is not ready.")
    node = ComputeNode.objects.filter(host=instance.host).only("host_ip").first()
    if node is None:
        raise errors.Conflict(f"The host of instance {instance.uuid} has not reported yet.")
    token = secrets.token_urlsafe(32)
    now = timezone.now()
    with transaction.atomic():
        _purge_stale(now)
        ConsoleToken.objects.create(
            token_hash=hash_token(token),
            instance=instance,
            console_type=console_type,
            host=instance.host,
            host_address=node.host_ip,
            port=instance.console_port if (instance.console_port or 0) > 0 else None,
            socket=instance.console_socket,
            expires_at=now + timedelta(seconds=settings.KUMO_CONSOLE_TOKEN_TTL),
        )
    base = settings.KUMO_CONSOLE_BASE_URL or base_url
    return console_url(base, token)


def _purge_stale(now: datetime) -> None:
    """Forget tokens that can no longer matter: expired a TTL ago and not in an open session."""
    cutoff = now - timedelta(seconds=settings.KUMO_CONSOLE_TOKEN_TTL)
    ConsoleToken.objects.filter(expires_at__lt=cutoff).exclude(_open_sessions(now)).delete()


def _open_sessions(now: datetime) -> Q:
    fresh = now - timedelta(seconds=session_stale_after())
    return Q(used_at__isnull=False, closed_at__isnull=True, seen_at__gte=fresh)


def _find(token: str | None) -> ConsoleToken | None:
    if not token or not _TOKEN_SHAPE.match(token):
        return None
    return (
        ConsoleToken.objects.select_related("instance")
        .filter(token_hash=hash_token(token))
        .first()
    )


def _target_problem(row: ConsoleToken, instance: Instance) -> str | None:
    """Why the token's instance cannot be shown at the token's target now, or None."""
    if instance.deleted or instance.task_state == states.DELETING:
        return GONE
    if instance.host != row.host:
        return MOVED
    if instance.vm_state not in SHOWABLE_VM_STATES or not _has_screen(instance):
        return NOT_RUNNING
    if row.socket or instance.console_socket:
        # A socket target is bound exactly: a guest that now reports another socket (or a port)
        # restarted or moved, and a new link binds where it is now.
        return None if row.socket == instance.console_socket else MOVED
    if row.port is not None and row.port != instance.console_port:
        return MOVED  # the guest restarted on another port: a new link binds the new one
    address = ComputeNode.objects.filter(host=row.host).values_list("host_ip", flat=True).first()
    if address != row.host_address:
        return MOVED
    return None


def _has_screen(instance: Instance) -> bool:
    return bool(instance.console_socket) or (instance.console_port or 0) > 0


def describe_token(token: str | None) -> TokenState:
    """The page's view of a token: whether connecting would work now. Changes nothing."""
    row = _find(token)
    if row is None:
        return TokenState(INVALID)
    name = row.instance.display_name
    if row.used_at is not None:
        # Once used, the more useful news is why the session ended, if the instance went away.
        problem = _target_problem(row, row.instance)
        return TokenState(problem if problem in (GONE, MOVED) else USED, name)
    if row.expires_at <= timezone.now():
        return TokenState(EXPIRED, name)
    return TokenState(_target_problem(row, row.instance) or "ready", name)


def consume_token(token: str | None) -> ConsoleTarget:
    """Take the token for one session and return where that session connects.

    Raises ConsoleRefused when the token is unknown, expired or used, when its instance is gone,
    moved or not running, or when the instance already has its maximum of open sessions. Nothing
    is consumed by a refusal, except that a used token stays used.
    """
    row = _find(token)
    if row is None:
        raise ConsoleRefused(INVALID)
    now = timezone.now()
    with transaction.atomic():
        # The instance row lock serialises the session count with the claim below, so two tokens
        # of one instance cannot both take the last place.
        instance = Instance.objects.select_for_update(no_key=True).filter(pk=row.instance_id).first()
        if instance is None:
            raise ConsoleRefused(GONE)
        if row.used_at is not None:
            raise ConsoleRefused(USED)
        if row.expires_at <= now:
            raise ConsoleRefused(EXPIRED)
        problem = _target_problem(row, instance)
        if problem is not None:
            raise ConsoleRefused(problem)
        open_now = ConsoleToken.objects.filter(_open_sessions(now), instance_id=instance.pk)
        if open_now.count() >= settings.KUMO_CONSOLE_MAX_SESSIONS:
            raise ConsoleRefused(BUSY)
        claimed = ConsoleToken.objects.filter(
            pk=row.pk, used_at__isnull=True, expires_at__gt=now
        ).update(used_at=now, seen_at=now, port=instance.console_port)
        if claimed != 1:
            raise ConsoleRefused(USED)  # another connection took it between our read and update
    return ConsoleTarget(
        token_id=row.pk,
        instance_uuid=str(instance.pk),
        instance_name=instance.display_name,
        host=row.host,
        host_address=row.host_address,
        port=int(instance.console_port or 0),
        socket=row.socket,
    )


def session_alive(target: ConsoleTarget) -> bool:
    """Whether an open session may go on (its instance still there, same host and port); also
    marks the session as seen, which keeps its place in the instance's session count."""
    now = timezone.now()
    if not ConsoleToken.objects.filter(pk=target.token_id, closed_at__isnull=True).update(
        seen_at=now
    ):
        return False  # closed, or removed with its instance
    row = ConsoleToken.objects.select_related("instance").filter(pk=target.token_id).first()
    return row is not None and _target_problem(row, row.instance) is None


def close_session(target: ConsoleTarget) -> None:
    """The session ended: its place in the session count is free again. Idempotent."""
    ConsoleToken.objects.filter(pk=target.token_id, closed_at__isnull=True).update(
        closed_at=timezone.now()
    )


def delete_instance_tokens(instance_uuid: str) -> int:
    """Remove every token of an instance (it is being deleted); open sessions notice at their
    next re-check. Returns how many were removed."""
    deleted, _ = ConsoleToken.objects.filter(instance_id=instance_uuid).delete()
    return deleted
