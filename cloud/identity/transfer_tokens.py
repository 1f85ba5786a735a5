"""Short-lived tokens a host is given to move an image's data for a user (a compute host downloading
the image it boots, a volume host reading or writing an image), reused while nothing identity
holds has changed.

Issuing one is a stored Keystone token: the user's roles on the project (a DISTINCT over four
joins), the project's row and an INSERT, a quarter of the scheduler's CPU per boot when every spawn
had a token of its own, though the agent uses it only when the image is not in its cache. So a
process keeps the tokens it issued, by (user, project, lifetime), and hands the same one out again
while it keeps at least REUSE_WHILE_LEFT of its lifetime *and* the identity generation
(token_cache.py) has not moved since it was issued. Every change a token's validity depends on (a
token revoked, a role granted or removed directly or through a group, a user or project disabled,
renamed or deleted) bumps that generation, so the next transfer after any of them gets a token
issued afresh, with the roles as they are then, exactly as if none had been kept.

Why that is as safe as a token per transfer:

- The generation is read *before* the database, as token validation does: an issue that raced a
  change is tagged with the generation before the change's first bump, which makes it stale.
- When the generation cannot be read (the shared cache is away) nothing is kept: every transfer
  gets a new token.
- A token handed out keeps at least REUSE_WHILE_LEFT of the lifetime its caller asked for, so a
  message that waits in a host's queue finds it valid as long as before within that margin.
- What a reused token can do is what a new one would: it is the same user's, on the same project,
  with the roles it is validated with at each use (the image API validates it as any token).
- The secret stays in this process's memory a few minutes longer than the message that carries it;
  it is never logged.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from . import token_cache, tokens
from .models import Project, User

# A kept token is handed out again while at least this share of its lifetime is left: a spawn's
# 900 s token serves the boots of its user and project for its first five minutes.
REUSE_WHILE_LEFT = 2 / 3
# Tokens kept per process; past it the oldest half goes (a process serves a few users at once).
MAX_KEPT = 1_000


@dataclass(frozen=True)
class _Kept:
    token: str
    generation: int
    expires_at: datetime


_kept: dict[tuple[str, str | None, int], _Kept] = {}
_lock = threading.Lock()


def token_for(user_id: str, project_id: str | None, *, ttl: int) -> str:
    """A token of the user on the project valid at least REUSE_WHILE_LEFT × `ttl` seconds more:
    one this process issued, if nothing identity holds changed since, otherwise a new one.
    Raises tokens.AuthenticationError when the user (gone, or without a role on the project) can
    have none."""
    key = (str(user_id), None if project_id is None else str(project_id), ttl)
    generation = token_cache.current_generation()  # before the database: see the module's doc
    kept = _kept.get(key)
    if (kept is not None and generation is not None and kept.generation == generation
            and kept.expires_at - timezone.now() >= timedelta(seconds=ttl * REUSE_WHILE_LEFT)):
        return kept.token
    issued = _issue(key[0], key[1], ttl)
    if generation is not None:
        with _lock:
            if len(_kept) >= MAX_KEPT:
                for old in list(_kept)[: MAX_KEPT // 2]:  # dicts keep insertion order
                    _kept.pop(old, None)
            _kept[key] = _Kept(issued.token, generation, issued.record.expires_at)
    return issued.token


def _issue(user_id: str, project_id: str | None, ttl: int) -> tokens.IssuedToken:
    user = User.objects.filter(pk=user_id).first()
    if user is None:
        raise tokens.AuthenticationError("The user no longer exists.")
    project = None
    if project_id is not None:
        project = Project.objects.filter(pk=project_id).first()
        if project is None:
            raise tokens.AuthenticationError("The project no longer exists.")
    return tokens.issue(user, project, ["token"], ttl=ttl)


def forget() -> None:
    """Forget the tokens this process keeps (tests)."""
    with _lock:
        _kept.clear()
