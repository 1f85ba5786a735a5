"""The agent's metadata proxy with real namespaces and packets (compute_agent/network/
metadata_proxy.py, its listener in the DHCP namespace made by compute_agent/network/dhcp.py).

The test makes its own namespaces (a "host" where LinuxBridgeDriver runs, two "guests" on one
VXLAN network, as tests/integration/test_linuxbridge_dataplane.py does) and, on the machine's
loopback, a stand-in for the control plane's /metadata/ that checks the signature and answers
with what the request claims. A guest takes its lease with the route to 169.254.169.254 through
the DHCP server, asks with wget, and is answered as itself: the network of the namespace its
request came in on, its own source address whatever headers it sends; a spoofed source address
never arrives. The listener is made again when the agent restarts and goes away with the server.

Skipped only when not root or without busybox or dnsmasq; CI (KUMO_NO_SKIPS) turns that into a
failure.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from compute_agent import messages as msg
from compute_agent.network.base import bridge_name, tap_name
from compute_agent.network.dhcp import host_leg
from compute_agent.network.linuxbridge import LinuxBridgeDriver
from compute_agent.network.metadata_proxy import MetadataProxy
from tests.integration.dataplane import BUSYBOX, NEEDS_BUSYBOX, NEEDS_DNSMASQ, NEEDS_ROOT

pytestmark = [NEEDS_ROOT, NEEDS_BUSYBOX, NEEDS_DNSMASQ]

NETWORK = "6a1b2c3d-0000-4000-8000-00000000e002"
PORT_A = "a1a1a1a1-1111-4000-8000-000000000001"
PORT_B = "b1b1b1b1-2222-4000-8000-000000000002"
INSTANCE = "2b5f0000-0000-4000-8000-0000000000aa"
DHCP_IP = "10.51.0.2"
SECRET = "metadata-test-secret"
URL = "http://169.254.169.254/openstack/latest/meta_data.json"
ANY = [msg.SecurityRule(direction="egress"), msg.SecurityRule(direction="ingress")]
# What a guest's DHCP client does with a lease: the address, and the classless static routes.
UDHCPC_SCRIPT = """#!/bin/sh
[ "$1" = bound ] || exit 0
ip addr add "$ip/$mask" dev "$interface"
set -- $staticroutes
while [ $# -ge 2 ]; do
    ip route replace "$1" via "$2" dev "$interface"
    shift 2
done
exit 0
"""


def sh(*argv: str, check: bool = True, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=timeout)


def in_ns(ns: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return sh("ip", "netns", "exec", ns, *argv, check=check)


def eventually(condition: Callable[[], bool], seconds: float = 8) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


@dataclass
class ControlPlane:
    """The control plane's /metadata/ as far as the proxy can tell: it checks the signature
    and answers with the claim (network, address, path) it verified."""

    server: ThreadingHTTPServer
    seen: list[dict[str, str]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def control_plane() -> Iterator[ControlPlane]:
    plane: ControlPlane

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.removeprefix(msg.METADATA_PREFIX)
            h = self.headers
            claim = {"network": h[msg.METADATA_NETWORK_HEADER] or "",
                     "address": h[msg.METADATA_ADDRESS_HEADER] or "", "path": path,
                     "host": h[msg.METADATA_SIGNER_HEADER] or ""}
            expected = msg.metadata_signature(SECRET, claim["host"], claim["network"],
                                              claim["address"], path,
                                              h[msg.METADATA_TIME_HEADER] or "")
            if h[msg.METADATA_SIGNATURE_HEADER] != expected:
                self.send_response(403)
                self.end_headers()
                return
            plane.seen.append(claim)
            body = json.dumps(claim).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    plane = ControlPlane(server)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield plane
    server.shutdown()
    server.server_close()


@dataclass
class World:
    host: str
    guests: dict[str, str]
    state_dir: Path
    script: Path
    proxies: list[MetadataProxy] = field(default_factory=list)

    def driver(self, url: str) -> LinuxBridgeDriver:
        proxy = MetadataProxy(url, SECRET)
        self.proxies.append(proxy)
        return LinuxBridgeDriver(state_dir=self.state_dir, netns=self.host,
                                 tunnel_ip="192.0.2.1", metadata=proxy)

    def attach(self, port: msg.NetworkInfo) -> None:
        guest, tap = self.guests[port.port_id], tap_name(port.port_id)
        sh("ip", "-n", self.host, "link", "add", tap, "type", "veth",
           "peer", "name", "eth0", "netns", guest)
        sh("ip", "-n", self.host, "link", "set", tap, "master", bridge_name(port.network_id),
           "up")
        in_ns(guest, "ip", "link", "set", "eth0", "address", port.mac_address)
        in_ns(guest, "ip", "link", "set", "eth0", "up")

    def dhcp(self, port_id: str) -> None:
        result = in_ns(self.guests[port_id], BUSYBOX, "udhcpc", "-i", "eth0", "-n", "-q", "-f",
                       "-t", "5", "-T", "1", "-O", "staticroutes", "-s", str(self.script),
                       check=False)
        assert result.returncode == 0, result.stdout + result.stderr

    def fetch(self, port_id: str, *extra: str) -> str:
        """What wget in the guest gets from the metadata service ("" when nothing answers)."""
        result = in_ns(self.guests[port_id], "timeout", "5", BUSYBOX, "wget", "-q", "-O", "-",
                       *extra, URL, check=False)
        return result.stdout if result.returncode == 0 else ""

    def host_links(self) -> set[str]:
        out = in_ns(self.host, "ip", "-o", "link", "show").stdout
        return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}


def running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def port(port_id: str, mac: str, ip: str) -> msg.NetworkInfo:
    return msg.NetworkInfo(
        network_id=NETWORK, network_name="mdt", port_id=port_id, mac_address=mac,
        ip_address=ip, network_type="vxlan", segmentation_id=4343, mtu=1450,
        subnets=[msg.SubnetInfo(subnet_id="s1", cidr="10.51.0.0/24", gateway_ip="10.51.0.1")],
        rules=ANY, hostname=port_id[:4], dhcp_ip=DHCP_IP, dhcp_mac="fa:16:3e:00:00:03",
        peers=["192.0.2.99"],
    )


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    tag = uuid.uuid4().hex[:6]
    host = f"kumo-mdt-{tag}"
    guests = {PORT_A: f"kumo-mdt-{tag}-a", PORT_B: f"kumo-mdt-{tag}-b"}
    script = tmp_path / "udhcpc.sh"
    script.write_text(UDHCPC_SCRIPT)
    script.chmod(0o755)
    w = World(host, guests, tmp_path / "network", script)
    try:
        for ns in (host, *guests.values()):
            sh("ip", "netns", "add", ns)
            in_ns(ns, "ip", "link", "set", "lo", "up")
        yield w
    finally:
        try:
            for proxy in w.proxies:
                proxy.stop_all()
            LinuxBridgeDriver(state_dir=w.state_dir, netns=host).cleanup()
        finally:
            for ns in (*guests.values(), host):
                sh("ip", "netns", "del", ns, check=False)


def test_each_guest_is_answered_as_itself_through_its_dhcp_namespace(
        world: World, control_plane: ControlPlane) -> None:
    a = port(PORT_A, "52:54:00:51:00:11", "10.51.0.11")
    b = port(PORT_B, "52:54:00:51:00:12", "10.51.0.12")
    driver = world.driver(control_plane.url)
    driver.plug(INSTANCE, [a, b])
    world.attach(a)
    world.attach(b)
    world.dhcp(PORT_A)
    world.dhcp(PORT_B)
    # The lease carried the route through the DHCP server.
    routes = in_ns(world.guests[PORT_A], "ip", "route").stdout
    assert f"169.254.169.254 via {DHCP_IP}" in routes, routes

    answer = json.loads(world.fetch(PORT_A))
    assert answer == {"network": NETWORK, "address": "10.51.0.11",
                      "path": "/openstack/latest/meta_data.json", "host": ""}
    assert json.loads(world.fetch(PORT_B))["address"] == "10.51.0.12"
    # Headers the guest sends claim nothing: the address is the socket's.
    forged = world.fetch(PORT_A, "--header", f"{msg.METADATA_ADDRESS_HEADER}: 10.51.0.12",
                         "--header", f"{msg.METADATA_NETWORK_HEADER}: someone-else")
    assert json.loads(forged)["address"] == "10.51.0.11"
    assert json.loads(forged)["network"] == NETWORK
    # A source address that is not the port's own is dropped by the anti-spoofing rules before
    # it reaches the proxy: nothing answers, and the control plane never hears of it.
    guest_a = world.guests[PORT_A]
    in_ns(guest_a, "ip", "addr", "add", "10.51.0.99/32", "dev", "eth0")
    in_ns(guest_a, "ip", "route", "replace", "169.254.169.254", "via", DHCP_IP, "dev", "eth0",
          "src", "10.51.0.99")
    assert world.fetch(PORT_A) == ""
    assert {c["address"] for c in control_plane.seen} == {"10.51.0.11", "10.51.0.12"}
    in_ns(guest_a, "ip", "route", "replace", "169.254.169.254", "via", DHCP_IP, "dev", "eth0")

    # An agent that restarts (its sockets died with it) listens again in the running server's
    # namespace.
    pid = driver.dhcp.pid(NETWORK)
    assert pid is not None and world.proxies[0].serving() == {NETWORK: pid}
    world.proxies[0].stop_all()
    assert world.fetch(PORT_A) == ""
    again = world.driver(control_plane.url)
    again.start()
    assert again.dhcp.pid(NETWORK) == pid and world.proxies[1].serving() == {NETWORK: pid}
    assert json.loads(world.fetch(PORT_A))["address"] == "10.51.0.11"

    # The last port goes: the listener first, then the server, its namespace and its leg.
    again.unplug(INSTANCE)
    assert world.proxies[1].serving() == {}
    assert eventually(lambda: not running(pid), 5)
    assert host_leg(NETWORK) not in world.host_links()
    driver.dhcp._children.pop(pid).wait(5)  # the first driver started it: reap it


def test_the_listener_never_keeps_a_namespace_alive(control_plane: ControlPlane) -> None:
    """A socket holds the namespace it was made in: closed with `stop`, the namespace of a
    process that ended goes (its veth with it); that is why the DHCP server's listener is
    closed before the server is stopped."""
    tag = uuid.uuid4().hex[:6]
    host, leg = f"kumo-mdt-{tag}", f"mdt{tag}"
    owner = subprocess.Popen(["unshare", "--net", "--", "sleep", "60"])
    try:
        sh("ip", "netns", "add", host)
        assert eventually(lambda: os.readlink(f"/proc/{owner.pid}/ns/net")
                          != os.readlink("/proc/self/ns/net"), 5)
        sh("ip", "-n", host, "link", "add", leg, "type", "veth", "peer", "name", "inside",
           "netns", str(owner.pid))
        sh("nsenter", f"--net=/proc/{owner.pid}/ns/net", "--", "ip", "link", "set", "lo", "up")
        proxy = MetadataProxy(control_plane.url, SECRET, address="127.0.0.1", port=8775)
        proxy.serve(NETWORK, owner.pid)
        assert proxy.serving() == {NETWORK: owner.pid}
        # It really listens there (and not in the machine's namespace).
        probe = sh("nsenter", f"--net=/proc/{owner.pid}/ns/net", "--", "timeout", "5",
                   BUSYBOX, "wget", "-q", "-O", "-", "http://127.0.0.1:8775/latest/x",
                   check=False)
        assert json.loads(probe.stdout)["address"] == "127.0.0.1", probe.stderr
        owner.send_signal(signal.SIGKILL)
        owner.wait()
        # The process is gone, but the listener still holds the namespace and the veth.
        time.sleep(0.5)
        assert leg in sh("ip", "-n", host, "-o", "link", "show").stdout
        proxy.stop(NETWORK)
        assert eventually(lambda: leg not in sh("ip", "-n", host, "-o", "link", "show").stdout,
                          5)
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
        sh("ip", "netns", "del", host, check=False)
