"""A local HTTP server standing in for the image API: serves files by name, records every request
(with the token it carried), and stores PUT bodies, so the agent's transfers are tested for real."""

from __future__ import annotations

import hashlib
import http.server
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Received:
    method: str
    path: str
    token: str


@dataclass
class ImageServer:
    root: Path
    port: int = 0
    delay: float = 0.0  # seconds before answering a GET, to widen race windows
    requests: list[Received] = field(default_factory=list)
    uploads: dict[str, bytes] = field(default_factory=dict)
    required_token: str = ""

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def add(self, name: str, data: bytes) -> str:
        """Serve `data` as `name`; return its MD5."""
        (self.root / name).write_bytes(data)
        return hashlib.md5(data).hexdigest()

    def gets(self, name: str) -> int:
        return sum(1 for r in self.requests if r.method == "GET" and r.path == f"/{name}")


def start(server_state: ImageServer) -> http.server.ThreadingHTTPServer:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _allowed(self) -> bool:
            token = self.headers.get("X-Auth-Token", "")
            server_state.requests.append(Received(self.command, self.path, token))
            if server_state.required_token and token != server_state.required_token:
                self.send_response(401)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return False
            return True

        def do_GET(self) -> None:
            if not self._allowed():
                return
            time.sleep(server_state.delay)
            path = server_state.root / self.path.lstrip("/")
            if not path.is_file():
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            data = path.read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_PUT(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            if not self._allowed():
                return
            server_state.uploads[self.path] = body
            self.send_response(204)
            self.end_headers()

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server_state.port = httpd.server_address[1]
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    return httpd
