"""The libvirt driver's migration methods where libvirt's test hypervisor can show them: what
runs without disks, and what must never reach libvirt (the test driver hangs when asked to
migrate). The real copies, live and cold, are tested on simulated hosts
(tests/e2e/test_migration_agent.py). Also the peer connections' URI rules and deadline, and the
storage pool cold migrations' disks land in."""

from __future__ import annotations

import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import libvirt
import pytest

from compute_agent import messages as msg
from compute_agent.drivers.base import DriverError
from compute_agent.drivers.libvirt import LibvirtDriver, NoSuchInstance, incoming, peers

SpawnRequestFactory = Callable[..., msg.SpawnRequest]


def test_preparing_on_the_test_driver_needs_nothing_and_leaves_a_domain_alone(
    driver: LibvirtDriver, spawn_request: SpawnRequestFactory
) -> None:
    request = spawn_request()
    driver.prepare_migration(request, live=True)
    assert driver.power_state(request.instance_uuid) == msg.POWER_NOSTATE
    driver.spawn(request)
    driver.prepare_migration(request, live=False)
    assert driver.power_state(request.instance_uuid) == msg.POWER_RUNNING


def test_the_test_driver_is_never_asked_to_live_migrate(
    driver: LibvirtDriver, spawn_request: SpawnRequestFactory
) -> None:
    request = spawn_request()
    driver.spawn(request)
    started = time.monotonic()
    with pytest.raises(DriverError, match="test driver cannot live-migrate"):
        driver.live_migrate(request.instance_uuid, "qemu+tcp://192.0.2.1/system",
                            on_progress=lambda figures: None)
    assert time.monotonic() - started < 1
    assert driver.power_state(request.instance_uuid) == msg.POWER_RUNNING


def test_a_cold_move_on_the_test_driver_stops_the_guest_and_finishes_by_spawning(
    driver: LibvirtDriver, spawn_request: SpawnRequestFactory
) -> None:
    request = spawn_request()
    driver.spawn(request)
    assert driver.migrate_disk(request.instance_uuid, "qemu+tcp://192.0.2.1/system",
                               stop_timeout=0) == msg.POWER_SHUTDOWN
    assert driver.power_state(request.instance_uuid) == msg.POWER_SHUTDOWN  # kept, for a revert
    assert driver.finish_migration(request) == msg.POWER_RUNNING


def test_sending_the_disk_of_an_instance_that_is_not_here_fails(driver: LibvirtDriver) -> None:
    with pytest.raises(NoSuchInstance):
        driver.migrate_disk("6f1d3c0e-2b7a-4c1e-9a8f-0d5b1e2c3a4f", "qemu+tcp://h/system",
                            stop_timeout=0)


def test_abort_and_force_complete_find_nothing_to_act_on(
    driver: LibvirtDriver, spawn_request: SpawnRequestFactory
) -> None:
    request = spawn_request()
    assert driver.abort_migration(request.instance_uuid) is False  # no domain at all
    driver.spawn(request)
    assert driver.abort_migration(request.instance_uuid) is False
    assert driver.force_complete_migration(request.instance_uuid) is False
    assert driver.power_state(request.instance_uuid) == msg.POWER_RUNNING


def test_abort_and_force_complete_ask_libvirt_outside_the_connection_lock(
    driver: LibvirtDriver, spawn_request: SpawnRequestFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # libvirtd may keep a call on a migrating domain waiting for seconds: under the connection
    # lock it would hold up the heartbeat and every task of the host for as long.
    from compute_agent.drivers.libvirt import live_migration

    request = spawn_request()
    driver.spawn(request)
    lock_free: list[bool] = []

    def job_active(_domain: libvirt.virDomain) -> bool:
        def try_lock() -> None:
            got = driver._lock.acquire(blocking=False)
            if got:
                driver._lock.release()
            lock_free.append(got)

        other = threading.Thread(target=try_lock)
        other.start()
        other.join()
        return False

    monkeypatch.setattr(live_migration, "_job_active", job_active)
    driver._migrations[request.instance_uuid] = live_migration.LiveMigrationJob()
    assert driver.abort_migration(request.instance_uuid) is False
    assert driver.force_complete_migration(request.instance_uuid) is False
    assert lock_free == [True, True]


def test_init_host_on_the_test_driver_defines_no_pool(tmp_path: Path) -> None:
    driver = LibvirtDriver("test:///default", instances_dir=tmp_path, takes_migrations=True)
    try:
        driver.init_host()
        with pytest.raises(DriverError, match="Storage pool not found"):
            driver._call("lookup", lambda conn: conn.storagePoolLookupByName(incoming.POOL_NAME))
    finally:
        driver.close()


# --- peers ----------------------------------------------------------------------------------


@pytest.mark.parametrize("uri", [
    "qemu+tcp://10.77.0.12/system",
    "qemu+ssh://root@10.77.0.12/system",
    "qemu+unix:///system?socket=/tmp/kumo-hosts/t/compute-2/run/libvirt-sock",
])
def test_a_peer_is_named_by_a_remote_qemu_uri(uri: str) -> None:
    assert peers.check_peer_uri(uri) == uri


@pytest.mark.parametrize(("uri", "why"), [
    ("qemu:///system?socket=/tmp/x/libvirt-sock", "names this host itself"),
    ("qemu:///system", "names this host itself"),
    ("test:///default", "only qemu hosts"),
    ("fake://host-b", "only qemu hosts"),
])
def test_a_uri_that_cannot_name_another_host_is_refused(uri: str, why: str) -> None:
    with pytest.raises(DriverError, match=why):
        peers.check_peer_uri(uri)


@pytest.mark.parametrize(("uri", "address"), [
    ("qemu+tcp://10.77.0.12/system", "tcp://10.77.0.12"),
    ("qemu+tcp://[fd00::12]:16509/system", "tcp://[fd00::12]"),
    ("qemu+unix:///system?socket=/s", None),
])
def test_the_migration_stream_goes_to_the_address_of_a_network_uri(
    uri: str, address: str | None
) -> None:
    assert peers.migration_address(uri) == address


@pytest.fixture
def silent_peer() -> Iterator[str]:
    """A unix socket that takes connections and never answers: a libvirt that hangs."""
    with tempfile.TemporaryDirectory(prefix="kumo-") as directory:
        path = f"{directory}/sock"
        server = socket.socket(socket.AF_UNIX)
        server.bind(path)
        server.listen(4)
        yield f"qemu+unix:///system?socket={path}"
        server.close()


def test_a_peer_that_never_answers_is_given_up_on_at_the_deadline(silent_peer: str) -> None:
    started = time.monotonic()
    with pytest.raises(DriverError, match="no answer within 1 s"):
        peers.open_peer(silent_peer, timeout=1)
    assert time.monotonic() - started < 3


def test_a_peer_that_is_not_there_fails_at_once(tmp_path: Path) -> None:
    with pytest.raises(DriverError, match="cannot connect to"):
        peers.open_peer(f"qemu+unix:///system?socket={tmp_path}/none", timeout=10)


def test_libvirt_events_run_in_one_thread_however_often_asked() -> None:
    peers.ensure_event_loop()
    peers.ensure_event_loop()
    assert [t.name for t in threading.enumerate()].count("libvirt-events") == 1


# --- the pool a cold migration's disk lands in ------------------------------------------------


@pytest.fixture
def test_conn() -> Iterator[libvirt.virConnect]:
    conn = libvirt.open("test:///default")
    yield conn
    try:
        pool = conn.storagePoolLookupByName(incoming.POOL_NAME)
        if pool.isActive():
            pool.destroy()
        pool.undefine()
    except libvirt.libvirtError:
        pass
    conn.close()


def test_the_incoming_pool_is_defined_once_started_and_follows_the_directory(
    test_conn: libvirt.virConnect, tmp_path: Path
) -> None:
    incoming.ensure_pool(test_conn, tmp_path / "a" / "_incoming")
    incoming.ensure_pool(test_conn, tmp_path / "a" / "_incoming")
    pool = test_conn.storagePoolLookupByName(incoming.POOL_NAME)
    assert pool.isActive() and pool.autostart()
    assert incoming.pool_path(pool) == str(tmp_path / "a" / "_incoming")
    assert (tmp_path / "a" / "_incoming").is_dir()

    incoming.ensure_pool(test_conn, tmp_path / "b" / "_incoming")
    pool = test_conn.storagePoolLookupByName(incoming.POOL_NAME)
    assert incoming.pool_path(pool) == str(tmp_path / "b" / "_incoming")


def test_a_destination_without_the_pool_is_named_in_the_failure(
    test_conn: libvirt.virConnect, tmp_path: Path
) -> None:
    disk = tmp_path / "disk"
    disk.write_bytes(b"x" * 512)
    with pytest.raises(DriverError, match="has no storage pool kumo-incoming"):
        incoming.upload(test_conn, "qemu+tcp://h/system", "u.disk", disk)
