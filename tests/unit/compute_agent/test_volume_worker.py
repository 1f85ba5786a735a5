"""The volume host process's command line, its Celery app and tasks, and its signed reports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from compute_agent import messages as msg
from compute_agent.volume_manager import VolumeManager
from compute_agent.volume_worker import (
    CeleryVolumeReporter,
    VolumeConfig,
    VolumeHeartbeat,
    create_app,
    create_backend,
    parse_args,
    register_tasks,
    worker_argv,
)
from compute_agent.volumes.fake import FakeVolumes
from compute_agent.volumes.nbd import NbdBackend

from .test_boundary import CONTROL_PLANE_LOADED, assert_ran_clean, run_fresh_python


def test_defaults_serve_nbd_on_loopback_from_the_standard_directory() -> None:
    config = parse_args(["--host", "storage-1"], {})
    assert config == VolumeConfig(host="storage-1")
    assert (config.backend, config.volumes_dir, config.export_address, config.export_port,
            config.availability_zone, config.heartbeat_interval) == (
        "nbd", "/var/lib/kumo/volumes", "127.0.0.1", 10809, "nova", 10.0)
    assert config.queue == "volume.storage-1"


def test_every_option_comes_from_the_command_line() -> None:
    config = parse_args([
        "--host", "vol-a", "--broker", "redis://b/3", "--volumes-dir", "/srv/v",
        "--backend", "fake", "--export-address", "10.77.0.111", "--export-port", "10900",
        "--availability-zone", "az1", "--heartbeat-interval", "2", "--netns", "kumo-run-s1",
        "--concurrency", "2", "--log-level", "debug"], {})
    assert config == VolumeConfig(
        host="vol-a", broker_url="redis://b/3", volumes_dir="/srv/v", backend="fake",
        export_address="10.77.0.111", export_port=10900, availability_zone="az1",
        heartbeat_interval=2.0, netns="kumo-run-s1", concurrency=2, log_level="DEBUG")


def test_options_come_from_the_environment_and_a_config_file(tmp_path: Path) -> None:
    env = {"KUMO_VOLUME_HOST": "vol-b", "CELERY_BROKER_URL": "redis://c/1",
           "KUMO_VOLUMES_DIR": "/srv/vols", "KUMO_VOLUME_BACKEND": "fake",
           "KUMO_VOLUME_EXPORT_ADDRESS": "192.0.2.7", "KUMO_VOLUME_EXPORT_PORT": "10811",
           "KUMO_VOLUME_AVAILABILITY_ZONE": "az2", "KUMO_HEARTBEAT_INTERVAL": "3",
           "KUMO_HOST_SECRET": "s3cret"}
    config = parse_args([], env)
    assert (config.host, config.broker_url, config.volumes_dir, config.backend,
            config.export_address, config.export_port, config.availability_zone,
            config.heartbeat_interval) == (
        "vol-b", "redis://c/1", "/srv/vols", "fake", "192.0.2.7", 10811, "az2", 3.0)
    assert config.identity is not None and config.identity.host == "vol-b"
    assert "s3cret" not in repr(config)

    env_file = tmp_path / "volume.env"
    env_file.write_text("KUMO_VOLUME_HOST=from-file\nKUMO_VOLUME_EXPORT_PORT=10999\n")
    config = parse_args(["--config", str(env_file)], env)
    assert (config.host, config.export_port) == ("from-file", 10999)
    assert parse_args(["--config", str(env_file), "--host", "cli"], env).host == "cli"


def test_a_relative_volumes_dir_is_made_absolute() -> None:
    assert Path(parse_args(["--host", "h", "--volumes-dir", "var/volumes"], {}).volumes_dir
                ).is_absolute()


@pytest.mark.parametrize("argv", [
    ["--host", "bad host"],
    ["--host", "h", "--backend", "lvm"],
    ["--host", "h", "--export-address", "storage.example"],
    ["--host", "h", "--export-address", "0.0.0.0"],
    ["--host", "h", "--export-port", "0"],
    ["--host", "h", "--export-port", "70000"],
    ["--host", "h", "--heartbeat-interval", "0"],
    ["--host", "h", "--concurrency", "0"],
    ["--host", "h", "--availability-zone", ""],
])
def test_rejects_bad_arguments(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(argv, {})


def test_the_app_consumes_only_the_volume_queue_and_the_worker_runs_threads() -> None:
    config = VolumeConfig(host="storage-1", broker_url="redis://127.0.0.1:6379/15")
    app = create_app(config)
    assert [q.name for q in app.conf.task_queues] == ["volume.storage-1"]
    argv = worker_argv(config)
    assert "--pool=threads" in argv and "--queues=volume.storage-1" in argv
    assert "--hostname=volume@storage-1" in argv


def test_the_back_end_is_the_one_named_with_the_export_address() -> None:
    fake = create_backend(VolumeConfig(host="h", backend="fake", export_address="10.0.0.9"))
    assert isinstance(fake, FakeVolumes) and fake.export_host == "10.0.0.9"
    nbd = create_backend(VolumeConfig(host="h", volumes_dir="/srv/v", export_address="10.0.0.9",
                                      export_port=10900, netns="kumo-x-storage-1"))
    assert isinstance(nbd, NbdBackend)
    assert (nbd.dir, nbd.export_host, nbd.port, nbd.netns) == (
        Path("/srv/v"), "10.0.0.9", 10900, "kumo-x-storage-1")


class RecordingApp:
    def __init__(self) -> None:
        self.sent: list[tuple[str, Any, dict[str, Any]]] = []

    def send_task(self, name: str, args: Any = None, **options: Any) -> None:
        self.sent.append((name, args, options))


def _manager(tmp_path: Path, app: RecordingApp, secret: str = "") -> VolumeManager:
    config = VolumeConfig(host="storage-1", host_secret=secret)
    backend = FakeVolumes()
    backend.start()
    return VolumeManager("storage-1", backend, CeleryVolumeReporter(app, config.identity),
                         backend_name="fake", volumes_dir=tmp_path)


def test_tasks_arrive_by_contract_name_and_events_and_reports_go_to_the_conductor(
    tmp_path: Path,
) -> None:
    sent = RecordingApp()
    manager = _manager(tmp_path, sent)
    tasks = register_tasks(create_app(VolumeConfig(host="storage-1")), manager)
    request = msg.VolumeRequest(request_id="r1", volume_id="vol-1", size_gb=1)
    tasks[msg.TASK_CREATE_VOLUME](request.to_dict())
    VolumeHeartbeat(manager, 10).tick()

    (event_name, event_args, event_options), (report_name, report_args, _) = sent.sent
    assert (event_name, event_options["queue"]) == (msg.TASK_VOLUME_EVENT, msg.CONDUCTOR_QUEUE)
    event = msg.VolumeEvent.from_dict(event_args[0])
    assert (event.event, event.volume_id, event.size_gb) == (msg.EVENT_VOLUME_CREATED, "vol-1", 1)
    assert report_name == msg.TASK_VOLUME_HOST_REPORT
    assert msg.VolumeHostReport.from_dict(report_args[0]).volumes == {"vol-1": 1024**3}


def test_a_host_with_a_secret_signs_its_volume_reports(tmp_path: Path) -> None:
    sent = RecordingApp()
    manager = _manager(tmp_path, sent, secret="host-secret")
    manager.delete_volume(msg.VolumeRequest(request_id="r", volume_id="vol-1"))
    name, args, options = sent.sent[0]
    headers = options["headers"]
    assert headers[msg.SIGNER_HEADER] == "storage-1"
    assert headers[msg.SIGNATURE_HEADER] == msg.report_signature(
        "host-secret", "storage-1", name, args[0])


def test_starting_a_volume_host_loads_neither_the_control_plane_nor_libvirt(tmp_path: Path) -> None:
    """A storage machine needs no Django and no hypervisor bindings: the real start-up path, up to
    where the worker would consume, with the control plane's settings in the environment."""
    assert_ran_clean(run_fresh_python(f"""
        import sys
        from compute_agent.boundary import forbid_control_plane_imports
        forbid_control_plane_imports()
        from compute_agent import messages
        from compute_agent.volume_worker import build_volume_host, parse_args
        config = parse_args(["--host", "boundary", "--backend", "fake",
                             "--volumes-dir", {str(tmp_path)!r}], environ={{}})
        volume_host = build_volume_host(config)
        assert messages.TASK_CREATE_VOLUME in volume_host.app.tasks
        import celery.bin.celery, celery.apps.worker, celery.concurrency.thread
        loaded = {CONTROL_PLANE_LOADED}
        assert not loaded, loaded
        assert "libvirt" not in sys.modules
        """))
