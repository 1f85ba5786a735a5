"""The standalone console proxy, for operators who want consoles served from a node of their own:

    python -m consoles.proxy [--host 127.0.0.1] [--port 6080]

websockify serving the same console page and noVNC files as the web process (consoles/views.py)
and relaying /console/ws to the guest a token names, with the same rules: the Origin first, then
the token (KumoTokenPlugin, one use, expiry, session cap), only then a TCP connection; the session
re-checks itself every KUMO_CONSOLE_RECHECK_INTERVAL seconds and ends when its instance is deleted
or moved. Point KUMO_CONSOLE_BASE_URL at this proxy (http://proxy-node:6080) so console URLs lead
here. It needs the database (it is a control-plane process), never a compute host's credentials.

websockify forks one process per connection; the parent never touches the database, so each child
opens a connection of its own.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import threading
from urllib.parse import parse_qs, urlsplit

from websockify import websockifyserver
from websockify.websocketproxy import ProxyRequestHandler, WebSocketProxy

log = logging.getLogger("consoles.proxy")


class ConsoleRequestHandler(ProxyRequestHandler):
    console_target = None

    # --- plain HTTP: the page, its status answer, noVNC's files --------------------------------

    def do_GET(self) -> None:
        from . import novnc, views

        parts = urlsplit(self.path)
        token = next(iter(parse_qs(parts.query).get("token", [])), None)
        if parts.path == "/console/":
            self._reply(200, "text/html; charset=utf-8", views.render_page(token).encode(),
                        views.PRIVATE_HEADERS)
        elif parts.path == views.STATUS_PATH:
            self._reply(200, "application/json", json.dumps(views.status_body(token)).encode(),
                        views.PRIVATE_HEADERS)
        elif parts.path.startswith(novnc.URL_PREFIX):
            found = novnc.resolve(parts.path[len(novnc.URL_PREFIX):])
            if found is None:
                self.send_error(404)
                return
            path, content_type = found
            self._reply(200, content_type, path.read_bytes(), {"Cache-Control": "public, max-age=3600"})
        else:
            self.send_error(404)

    def do_HEAD(self) -> None:
        self.send_error(405)

    def _reply(self, status: int, content_type: str, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    # --- the websocket: checks before any connection, then the relay ----------------------------

    def validate_connection(self) -> None:
        from cloud.compute import consoles

        from .origin import origin_allowed

        # websockify appends "came over TLS" to the client address.
        secure = len(self.client_address) > 2 and bool(self.client_address[2])
        if not origin_allowed(self.headers.get("Origin"), self.headers.get("Host"), secure=secure):
            self.send_error(403, "Origin not allowed")
            raise self.server.EClose("console refused: origin not allowed")
        token = next(iter(parse_qs(urlsplit(self.path).query).get("token", [])), None)
        try:
            target = self.server.token_plugin.consume(token)
        except consoles.ConsoleRefused as refused:
            self.send_error(403, refused.message)
            raise self.server.EClose(f"console refused: {refused.reason}") from None
        self.console_target = target
        self.server.target_host = target.host_address
        self.server.target_port = target.port or None

    def new_websocket_client(self) -> None:
        from django.db import connection

        from cloud.compute import consoles

        target = self.console_target
        if target is None:  # validate_connection refused it and closed the socket already
            return
        try:
            if target.socket:
                tsock = websockifyserver.WebSockifyServer.socket(
                    None, connect=True, unix_socket=target.socket
                )
            else:
                tsock = websockifyserver.WebSockifyServer.socket(
                    target.host_address, target.port, connect=True
                )
                tsock.setsockopt(socket.SOL_TCP, socket.TCP_NODELAY, 1)
        except Exception as exc:  # noqa: BLE001 - websockify raises bare Exception too
            self.log_message("console of %s: cannot reach %s: %s", target.instance_uuid,
                             target.where, exc)
            consoles.close_session(target)
            raise self.CClose(1011, "Failed to connect to the console") from None
        self.request.setsockopt(socket.SOL_TCP, socket.TCP_NODELAY, 1)
        self.log_message("console of %s open (%s)", target.instance_uuid, target.where)
        stop = threading.Event()
        watcher = threading.Thread(target=self._recheck, args=(target, tsock, stop), daemon=True)
        watcher.start()
        try:
            self.do_proxy(tsock)
        finally:
            stop.set()
            watcher.join(timeout=5)
            try:
                tsock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            tsock.close()
            consoles.close_session(target)
            connection.close()

    def _recheck(self, target, tsock: socket.socket, stop: threading.Event) -> None:
        """End the session (by shutting the guest side, which ends do_proxy's loop) when its
        instance is deleted or moved."""
        from django.conf import settings
        from django.db import connection

        from cloud.compute import consoles

        interval = float(settings.KUMO_CONSOLE_RECHECK_INTERVAL)
        try:
            while not stop.wait(interval):
                if not consoles.session_alive(target):
                    self.log_message("console of %s ends: the instance was deleted or moved",
                                     target.instance_uuid)
                    try:
                        tsock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return
        finally:
            connection.close()

    def log_message(self, format: str, *args) -> None:
        from .redact import redact

        log.info("%s %s", self.client_address[0], redact(format % args))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m consoles.proxy", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("KUMO_CONSOLE_PROXY_HOST", "127.0.0.1"),
                        help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int,
                        default=int(os.environ.get("KUMO_CONSOLE_PROXY_PORT", "6080")))
    parser.add_argument("--verbose", action="store_true", help="log every HTTP request")
    args = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cloud.settings")
    import django
    from django.db import connections

    django.setup()  # Django's LOGGING puts consoles.redact on the log handler
    from .token_plugin import KumoTokenPlugin

    connections.close_all()  # children fork from here: each opens its own connection
    server = WebSocketProxy(
        RequestHandlerClass=ConsoleRequestHandler,
        listen_host=args.host,
        listen_port=args.port,
        token_plugin=KumoTokenPlugin(),
        verbose=args.verbose,
        file_only=True,
    )
    log.info("console proxy listening on %s:%s", args.host, args.port)
    server.start_server()


if __name__ == "__main__":
    main()
