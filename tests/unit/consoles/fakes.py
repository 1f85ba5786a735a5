"""Stand-ins at the console path's edges: a TCP listener playing a guest's VNC server (it records
every connection and every byte, which is how the tests prove a refused console reached no VNC
port), and console rows made straight in the database."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field

from django.utils import timezone

from cloud.compute import consoles, states
from cloud.compute.models import ComputeNode, Instance, Service
from cloud.identity.context import RequestContext
from tests.personas import Persona

RFB_BANNER = b"RFB 003.008\n"


@dataclass
class FakeVnc:
    """A VNC 'server' on 127.0.0.1, or on the unix socket `path` (as qemu listens for a guest of
    a simulated host): sends the RFB banner, then echoes what it receives."""

    banner: bytes = RFB_BANNER
    path: str | None = None
    connections: int = 0
    received: bytearray = field(default_factory=bytearray)

    def __post_init__(self) -> None:
        if self.path is not None:
            self._sock = socket.socket(socket.AF_UNIX)
            self._sock.bind(self.path)
            self.port = 0
        else:
            self._sock = socket.socket()
            self._sock.bind(("127.0.0.1", 0))
            self.port = self._sock.getsockname()[1]
        self._sock.listen(16)
        self._lock = threading.Lock()
        self._clients: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                self._clients.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            if self.banner:
                conn.sendall(self.banner)
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                with self._lock:
                    self.received.extend(data)
                conn.sendall(data)
        except OSError:
            return
        finally:
            conn.close()

    def touched(self) -> bool:
        """Whether anything connected or sent a byte."""
        with self._lock:
            return self.connections > 0 or bool(self.received)

    def close(self) -> None:
        self._closed = True
        self._sock.close()
        with self._lock:
            for conn in self._clients:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def context_of(persona: Persona) -> RequestContext:
    roles = tuple(persona.user.assignments.filter(project=persona.project)
                  .values_list("role__name", flat=True))
    return RequestContext(user_id=str(persona.user.id), user_name=persona.user.name,
                          project_id=str(persona.project.id), project_name=persona.project.name,
                          roles=roles)


def console_host(host: str = "compute-1", host_ip: str = "127.0.0.1") -> ComputeNode:
    service, _ = Service.objects.get_or_create(
        host=host, binary="nova-compute", defaults={"last_seen_up": timezone.now()}
    )
    node = ComputeNode.objects.filter(host=host).first()
    if node is None:
        node = ComputeNode.objects.create(service=service, host=host, hypervisor_hostname=host,
                                          host_ip=host_ip)
    return node


def server_with_console(owner: Persona, port: int | None, name: str = "vm1",
                        host: str = "compute-1", socket_path: str = "") -> Instance:
    """An ACTIVE server on `host` whose agent reported VNC on `port` (of 127.0.0.1), or on the
    unix socket `socket_path`."""
    console_host(host)
    return Instance.objects.create(
        display_name=name, project=owner.project, user=owner.user, vcpus=1, memory_mb=128,
        root_gb=1, vm_state=states.ACTIVE, power_state="running", host=host, node=host,
        console_port=port, console_socket=socket_path,
    )


def mint(owner: Persona, instance: Instance, base_url: str = "http://testserver") -> str:
    """A fresh console token for `instance`, through the service the API uses."""
    url = consoles.create_console(context_of(owner), instance, "vnc", "novnc", base_url)
    return url.split("?token=", 1)[1]
