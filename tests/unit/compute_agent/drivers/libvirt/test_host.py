"""What the host report reads from libvirt: the hypervisor's capacity, and which domains are
ours with their power state and VNC port."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from pathlib import Path

import libvirt
import pytest

from compute_agent.drivers.libvirt import LibvirtDriver
from compute_agent.drivers.libvirt.host import _vnc_listen


def test_host_info_describes_the_hypervisor(driver: LibvirtDriver, tmp_path: Path) -> None:
    info = driver.host_info()
    assert info["hypervisor_type"] == "TEST"
    assert isinstance(info["hypervisor_version"], int)
    assert info["hypervisor_hostname"]
    assert info["vcpus"] > 0
    assert info["memory_mb"] > 0
    assert info["local_gb"] == shutil.disk_usage(tmp_path).total // 1024**3
    assert set(info["cpu_info"]) >= {"arch", "model", "vendor", "topology", "features"}
    assert set(info["cpu_info"]["topology"]) == {"sockets", "cores", "threads"}


def test_local_disk_is_measured_on_the_nearest_existing_parent(tmp_path: Path) -> None:
    driver = LibvirtDriver("test:///default", instances_dir=tmp_path / "not" / "made" / "yet")
    try:
        assert driver.host_info()["local_gb"] == shutil.disk_usage(tmp_path).total // 1024**3
    finally:
        driver.close()


def test_domains_not_named_by_a_uuid_are_not_reported(
    driver: LibvirtDriver, raw_conn: libvirt.virConnect
) -> None:
    assert "test" in [d.name() for d in raw_conn.listAllDomains()]  # the test driver's own
    assert all(str(uuid.UUID(d.uuid)) == d.uuid for d in driver.list_domains())


def test_the_test_driver_reports_no_vnc_port(driver, spawn_request) -> None:
    spawned = spawn_request()
    driver.spawn(spawned)
    [state] = [d for d in driver.list_domains() if d.uuid == spawned.instance_uuid]
    assert state.vnc_port == -1  # libvirt's test driver has no VNC server


class _Domain:
    def __init__(self, xml: str, active: bool = True) -> None:
        self._xml, self._active = xml, active

    def isActive(self) -> bool:
        return self._active

    def XMLDesc(self, flags: int) -> str:
        return self._xml


LIVE = ("<domain><devices><graphics type='vnc' port='{port}' autoport='yes' listen='127.0.0.1'/>"
        "</devices></domain>")
SOCKET = ("<domain><devices><graphics type='vnc' socket='/run/vnc/a.vnc'>"
          "<listen type='socket' socket='/run/vnc/a.vnc'/></graphics></devices></domain>")


@pytest.mark.parametrize(("xml", "active", "listen"), [
    (LIVE.format(port=5903), True, (5903, "")),
    (LIVE.format(port=-1), True, (-1, "")),
    (LIVE.format(port=5903), False, (-1, "")),
    ("<domain><devices/></domain>", True, (-1, "")),
    (LIVE.format(port="x"), True, (-1, "")),
    (SOCKET, True, (-1, "/run/vnc/a.vnc")),
    (SOCKET, False, (-1, "")),
])
def test_the_vnc_port_or_socket_is_read_from_the_live_domain(
    xml: str, active: bool, listen: tuple[int, str]
) -> None:
    assert _vnc_listen(_Domain(xml, active)) == listen


def test_a_vnc_socket_is_reported_through_the_socket_directory(spawn_request) -> None:
    # pytest's tmp_path is too long for a unix socket's path (107 bytes at most).
    with tempfile.TemporaryDirectory(prefix="kumo-") as short:
        check_vnc_socket_report(Path(short), spawn_request())


def check_vnc_socket_report(tmp_path: Path, spawned) -> None:
    sockets = tmp_path / "vnc"
    driver = LibvirtDriver("test:///default", instances_dir=tmp_path / "i", vnc_socket_dir=sockets)
    try:
        driver.spawn(spawned)
        [state] = [d for d in driver.list_domains() if d.uuid == spawned.instance_uuid]
        assert (state.vnc_port, state.vnc_socket) == (-1, f"{sockets}/{spawned.instance_uuid}.vnc")
        assert driver.vnc_socket_path(spawned.instance_uuid) == (
            f"{tmp_path}/i/_vnc/{spawned.instance_uuid}.vnc"
        )
    finally:
        driver.destroy(spawned.instance_uuid)
        driver.close()


def test_a_running_domains_listener_is_read_once_per_run(
    driver: LibvirtDriver, raw_conn: libvirt.virConnect, spawn_request, monkeypatch
) -> None:
    """A report follows every boot: parsing every running guest's XML in each one made its cost
    grow with the guests on the host. A domain started again (a new run) is read again."""
    from compute_agent.drivers.libvirt import host

    reads: list[str] = []

    def counted(domain):
        reads.append(domain.name())
        return _vnc_listen(domain)

    monkeypatch.setattr(host, "_vnc_listen", counted)
    spawned = [spawn_request() for _ in range(3)]
    for request in spawned:
        driver.spawn(request)
    first = driver.list_domains()
    assert sorted(reads) == sorted(r.instance_uuid for r in spawned)
    reads.clear()
    assert driver.list_domains() == first
    assert reads == []
    domain = raw_conn.lookupByName(spawned[0].instance_uuid)
    domain.destroy()
    domain.create()
    driver.list_domains()
    assert reads == [spawned[0].instance_uuid]
