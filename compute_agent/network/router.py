"""Routers on a compute host's data plane (stub: the interface; the implementation follows)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from compute_agent import messages as msg

from .runner import Runner


def sync(runner: Runner, spec: msg.RouterSpec, ensure_bridge: Callable[[msg.NetworkInfo], str],
         state_dir: Path) -> None:
    """Make the router `spec.router_id` on this host match `spec` (idempotent)."""
    raise NotImplementedError


def remove(runner: Runner, router_id: str, state_dir: Path) -> None:
    """Remove the router and everything it made; an unknown router is no error."""


def remove_all(runner: Runner, state_dir: Path) -> None:
    """Remove every router this host runs (the host leaves for good)."""
