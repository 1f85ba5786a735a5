"""The EC2 actions: each a function of one call, registered under its Action name with the
OpenStack policy rule that guards the same operation there (so a reader's RunInstances is refused
as their POST /servers is)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cloud.identity.context import RequestContext

from .params import Params


@dataclass(frozen=True)
class Call:
    ctx: RequestContext
    params: Params
    request_id: str
    base_url: str  # the origin clients reached, e.g. http://127.0.0.1:8000


Handler = Callable[[Call], dict[str, Any]]


@dataclass(frozen=True)
class Action:
    name: str
    handler: Handler
    rule: str | None
    # A read may be sent again with the same signature; a change may not (signature.first_use).
    changes: bool


ACTIONS: dict[str, Action] = {}


def action(name: str, rule: str | None) -> Callable[[Handler], Handler]:
    """Register `handler` as the EC2 action `name`, guarded by policy `rule` (None: any user
    of the project)."""
    def register(handler: Handler) -> Handler:
        assert name not in ACTIONS, f"EC2 action {name} registered twice"
        ACTIONS[name] = Action(name, handler, rule,
                               changes=not name.startswith(("Describe", "Get")))
        return handler
    return register
