"""What a libvirt error says, for the DriverError raised in its place."""

from __future__ import annotations

import libvirt


def error_text(exc: libvirt.libvirtError) -> str:
    """libvirt's own message, or the exception's text when it has none."""
    return exc.get_error_message() or str(exc)
