"""websockify's token plugin for Kumo: tokens answered from the same store as the web process's
consumer (cloud/compute/consoles.py), with the same rules — one use, expiry, session cap.

consoles/proxy.py uses consume() to keep the whole target for its session re-checks. lookup() is
websockify's own interface, so a stock websockify can use the plugin too
(`websockify --token-plugin consoles.token_plugin.KumoTokenPlugin`, with DJANGO_SETTINGS_MODULE
set), though without the Origin check and re-checks that consoles.proxy adds.
"""

from __future__ import annotations

import logging

from websockify.token_plugins import BasePlugin

log = logging.getLogger(__name__)


class KumoTokenPlugin(BasePlugin):
    def __init__(self, src: str | None = None) -> None:
        super().__init__(src)
        import django

        django.setup()  # idempotent; a stock websockify has not done it

    def consume(self, token: str | None):
        """The ConsoleTarget of a token, taking it for one session; raises ConsoleRefused."""
        from django.db import close_old_connections

        from cloud.compute import consoles

        close_old_connections()
        return consoles.consume_token(token)

    def lookup(self, token: str) -> tuple[str, int | str] | None:
        from cloud.compute import consoles

        try:
            target = self.consume(token)
        except consoles.ConsoleRefused as refused:
            log.info("console refused: %s", refused.reason)
            return None
        if target.socket:
            return "unix_socket", target.socket  # websockify's own spelling for a socket target
        return target.host_address, target.port
