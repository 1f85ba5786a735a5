"""Nova's deferred-delete actions (restore, forceDelete) and injectNetworkInfo, on a cloud that
deletes at once.

Kumo has no soft delete (Nova's reclaim_instance_interval 0): a deleted server is gone, so no server
is ever SOFT_DELETED. Nova then answers restore with 409 for any server it finds, and forceDelete
deletes the server from any state, as a delete does. injectNetworkInfo is accepted and does
nothing, as on Nova's libvirt driver (the guest takes its addresses over DHCP); Nova records no
instance action for it.
"""

from __future__ import annotations

from cloud.identity.context import RequestContext

from .models import Instance
from .operations import REGISTRY, runs
from .servers import delete_server
from .transitions import ensure_unlocked, refusal


@runs("restore")
def restore(ctx: RequestContext, instance: Instance) -> None:
    """409 in Nova's words: the server is not SOFT_DELETED (none ever is)."""
    ensure_unlocked(ctx, instance)
    raise refusal(REGISTRY["restore"], instance)


@runs("force_delete")
def force_delete(ctx: RequestContext, instance: Instance) -> None:
    """Delete now: what a delete does (nothing waits to be reclaimed)."""
    delete_server(ctx, instance)


@runs("inject_network_info")
def inject_network_info(ctx: RequestContext, instance: Instance) -> None:
    """Accepted: a locked server refuses it (admins pass), otherwise there is nothing to do."""
    ensure_unlocked(ctx, instance)
