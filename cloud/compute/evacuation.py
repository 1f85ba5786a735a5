"""Evacuating a server from a failed host (Nova's evacuate action, admins): what is checked first,
in Nova's order and with its errors.

Rebuilding the server on another host is not there yet (it comes with the host-failure work): a
request that passes every check is refused with 409, as Nova refuses an evacuation its compute
services cannot carry out, and the server stays where it is, untouched.
"""

from __future__ import annotations

from typing import NoReturn

from cloud import errors

from . import hosts, states
from .models import Instance

# The states Nova evacuates from (its check_instance_state on evacuate).
EVACUABLE = frozenset({states.ACTIVE, states.STOPPED, states.ERROR})


def evacuate(instance: Instance, host: str | None) -> NoReturn:
    """Check an evacuation of `instance` to `host` (None: the scheduler's choice), then refuse it.

    404 for an unknown destination, 400 for the server's own host or a source host still up,
    409 for a server in a state Nova does not evacuate from, and 409 when every check passed."""
    if host is not None and hosts.compute_service(host) is None:
        raise errors.NotFound(f"Compute host {host} not found.")
    if instance.host == host:
        raise errors.BadRequest("The target host can't be the same one.")
    if instance.vm_state not in EVACUABLE:
        raise errors.Conflict(f"Cannot 'evacuate' instance {instance.uuid} while it is in "
                              f"vm_state {instance.vm_state}")
    if instance.task_state is not None:
        raise errors.Conflict(f"Cannot 'evacuate' instance {instance.uuid} while it is in "
                              f"task_state {instance.task_state}")
    if not instance.host:
        raise errors.Conflict(f"Cannot 'evacuate' instance {instance.uuid}: it is on no host.")
    if hosts.host_is_up(instance.host):
        raise errors.BadRequest(f"Compute service of {instance.host} is still in use.")
    raise errors.Conflict(
        f"Evacuation is not supported by this cloud's compute service yet: instance "
        f"{instance.uuid} stays on {instance.host} until the host comes back.")
