"""Whether a server has a screen a console could show now, and if not, why, in words.

A console token can be issued for any running server (consoles.create_console), but the console
page then fails with "not running" whenever the host reported no VNC display for it — which is
always the case on libvirt's test driver (KUMO_LIBVIRT_URI=test:///default): its domains are
simulated, no VNC server ever listens, and the live XML keeps port -1, so the agent reports none
(compute_agent/drivers/libvirt/host.py) and Instance.console_port stays empty. This says which of
those cases holds, so a page can tell the truth before it hands out a link.
"""

from __future__ import annotations

from .consoles import SHOWABLE_VM_STATES
from .models import ComputeNode, Instance

# What libvirt's test driver answers to getType(), as the agent reports it (hypervisor_type).
TEST_HYPERVISOR = "test"


def has_screen(instance: Instance) -> bool:
    return bool(instance.console_socket) or (instance.console_port or 0) > 0


def screen_problem(instance: Instance) -> str | None:
    """None when the console can show the server's screen now; otherwise the reason."""
    if instance.vm_state not in SHOWABLE_VM_STATES or not instance.host:
        return (f"The instance is {instance.status}: only a running or paused instance has a "
                "screen to show.")
    if has_screen(instance):
        return None
    hypervisor = (
        ComputeNode.objects.filter(host=instance.host)
        .values_list("hypervisor_type", flat=True).first()
    )
    if (hypervisor or "").lower() == TEST_HYPERVISOR:
        return (f"This host's hypervisor has no graphical console: {instance.host} runs libvirt's "
                "test driver (KUMO_LIBVIRT_URI=test:///default), whose guests are simulated and "
                "have no screen. Hosts on qemu:///system show their guests' screens here.")
    return (f"{instance.host} has not reported this instance's screen yet (it does in its next "
            "report, within seconds of a start). Reload this tab in a moment.")
