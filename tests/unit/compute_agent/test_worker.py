"""The agent process's wiring: configuration, the Celery app's settings, task names, the
heartbeat and the reporter. Nothing is published: no broker is needed."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from compute_agent import messages as msg
from compute_agent.drivers.base import DriverError
from compute_agent.manager import host_tasks
from compute_agent.network.base import NetworkError
from compute_agent.reporter import CeleryReporter, ReportError
from compute_agent.worker import (
    AgentConfig,
    Heartbeat,
    create_app,
    parse_args,
    register_tasks,
    worker_argv,
)


def test_defaults_come_from_the_environment() -> None:
    config = parse_args(
        [],
        {
            "KUMO_COMPUTE_HOST": "node7",
            "KUMO_LIBVIRT_URI": "qemu:///system",
            "REDIS_URL": "redis://redis:6379/1",
            "KUMO_HEARTBEAT_INTERVAL": "2.5",
            "KUMO_INSTANCES_DIR": "/srv/instances",
        },
    )
    assert config == AgentConfig(
        host="node7",
        libvirt_uri="qemu:///system",
        broker_url="redis://redis:6379/1",
        heartbeat_interval=2.5,
        instances_dir="/srv/instances",
    )


def test_migration_uri_and_vnc_socket_dir_come_from_the_command_line_or_the_environment() -> None:
    env = {"KUMO_MIGRATION_URI": "qemu+tcp://10.0.0.1/system",
           "KUMO_VNC_SOCKET_DIR": "/run/kumo/vnc"}
    config = parse_args(["--host", "h"], env)
    assert (config.migration_uri, config.vnc_socket_dir) == (
        "qemu+tcp://10.0.0.1/system", "/run/kumo/vnc")
    config = parse_args(["--host", "h", "--migration-uri", "qemu+unix:///system?socket=/s",
                         "--vnc-socket-dir", "/v"], env)
    assert (config.migration_uri, config.vnc_socket_dir) == ("qemu+unix:///system?socket=/s", "/v")
    config = parse_args(["--host", "h"], {})
    assert (config.migration_uri, config.vnc_socket_dir) == ("", None)


def test_the_network_driver_options_come_from_the_command_line_or_the_environment() -> None:
    config = parse_args(["--host", "h"], {})
    assert (config.network_driver, config.netns, config.tunnel_ip,
            config.physical_interface_mappings, config.network_driver_allow_host_netns) == (
        "user", "", "", (), False)
    config = parse_args(["--host", "h", "--network-driver", "linuxbridge", "--netns", "kumo-h1",
                         "--tunnel-ip", "10.77.0.11", "--physical-interface-mapping",
                         "physnet1:eth1", "--physical-interface-mapping", "ext:eth2"], {})
    assert (config.network_driver, config.netns, config.tunnel_ip,
            config.physical_interface_mappings) == (
        "linuxbridge", "kumo-h1", "10.77.0.11", ("physnet1:eth1", "ext:eth2"))
    config = parse_args(["--host", "h"], {
        "KUMO_NETWORK_DRIVER": "linuxbridge", "KUMO_NETWORK_DRIVER_ALLOW_HOST_NETNS": "1",
        "KUMO_PHYSICAL_INTERFACE_MAPPINGS": "physnet1:eth1,ext:eth2"})
    assert (config.network_driver, config.network_driver_allow_host_netns,
            config.physical_interface_mappings) == (
        "linuxbridge", True, ("physnet1:eth1", "ext:eth2"))
    with pytest.raises(SystemExit):
        parse_args(["--host", "h", "--network-driver", "ovs"], {})


def test_without_environment_the_agent_uses_the_test_driver_and_local_redis() -> None:
    config = parse_args(["--host", "h"], {})
    assert config.libvirt_uri == "test:///default"
    assert config.broker_url == "redis://127.0.0.1:6379/0"
    assert config.heartbeat_interval == 10


def test_celery_broker_url_wins_over_redis_url_and_the_command_line_over_both() -> None:
    env = {"REDIS_URL": "redis://a/0", "CELERY_BROKER_URL": "redis://b/0", "KUMO_COMPUTE_HOST": "h"}
    assert parse_args([], env).broker_url == "redis://b/0"
    assert parse_args(["--broker", "redis://c/0"], env).broker_url == "redis://c/0"


@pytest.mark.parametrize(
    "argv",
    [
        ["--host", "bad host"],
        ["--host", "a/b"],
        ["--host", "h", "--concurrency", "0"],
        ["--host", "h", "--concurrency", "1"],
        ["--host", "h", "--vnc-socket-dir", "relative/dir"],
        ["--host", "h", "--heartbeat-interval", "0"],
        ["--host", "h", "--domain-type", "xen"],
    ],
)
def test_rejects_bad_arguments(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(argv, {})


@pytest.mark.parametrize("address", ["0.0.0.0", "::"])
def test_the_agent_will_not_start_with_vnc_on_every_interface(address: str) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--host", "h1", "--vnc-listen", address], environ={})


def test_app_consumes_only_its_host_queue_with_json_and_late_acks() -> None:
    app = create_app(AgentConfig(host="node7", broker_url="redis://127.0.0.1:6379/15"))
    conf = app.conf
    assert [q.name for q in conf.task_queues] == ["compute.node7"]
    assert conf.task_serializer == "json"
    assert list(conf.accept_content) == ["json"]
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.worker_enable_prefetch_count_reduction is False
    assert conf.task_ignore_result is True
    assert conf.worker_enable_remote_control is False
    assert not app.fixups, "Celery's Django fixup would import Django"


def test_worker_runs_threads_under_its_own_hostname_on_its_own_queue() -> None:
    argv = worker_argv(AgentConfig(host="node7", concurrency=3))
    assert argv[0] == "worker"
    assert "--pool=threads" in argv
    assert "--concurrency=3" in argv
    assert "--hostname=compute@node7" in argv
    assert "--queues=compute.node7" in argv


class RecordingManager:
    def __init__(self) -> None:
        self.calls: list[Any] = []
        self.reported = threading.Event()
        self.report_count = 0

        self.sweeps = 0

    def __getattr__(self, name: str) -> Any:
        # spawn, destroy and every instance action: record (method name, request).
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda request: self.calls.append((name, request))

    def send_host_report(self) -> None:
        self.report_count += 1
        if self.report_count >= 3:
            self.reported.set()

    def sweep_image_cache(self) -> list[str]:
        self.sweeps += 1
        return []


def test_tasks_are_registered_under_the_contract_names_and_parse_their_payload() -> None:
    app = create_app(AgentConfig(host="node7"))
    manager = RecordingManager()
    tasks = register_tasks(app, manager)  # type: ignore[arg-type]
    assert {msg.TASK_SPAWN, msg.TASK_DESTROY} <= set(app.tasks)

    spawn = msg.SpawnRequest(
        request_id="r1", instance_uuid="6f1d3c0e-2b7a-4c1e-9a8f-0d5b1e2c3a4f", name="n",
        hostname="n", vcpus=1, memory_mb=64, root_gb=1, image=msg.ImageRef(id="i", token="t"),
    )
    destroy = msg.DestroyRequest(request_id="r2", instance_uuid=spawn.instance_uuid)
    tasks[msg.TASK_SPAWN](spawn.to_dict())
    tasks[msg.TASK_DESTROY](destroy.to_dict())
    assert manager.calls == [("spawn", spawn), ("destroy", destroy)]


@pytest.mark.parametrize(
    "task_name, method, payload",
    [
        (msg.TASK_START, "start", msg.PowerRequest(request_id="r", instance_uuid="u")),
        (msg.TASK_STOP, "stop", msg.PowerRequest(request_id="r", instance_uuid="u", timeout=7)),
        (msg.TASK_REBOOT, "reboot",
         msg.RebootRequest(request_id="r", instance_uuid="u", reboot_type=msg.REBOOT_HARD)),
        (msg.TASK_PAUSE, "pause", msg.PowerRequest(request_id="r", instance_uuid="u")),
        (msg.TASK_UNPAUSE, "unpause", msg.PowerRequest(request_id="r", instance_uuid="u")),
        (msg.TASK_SUSPEND, "suspend", msg.PowerRequest(request_id="r", instance_uuid="u")),
        (msg.TASK_RESUME, "resume", msg.PowerRequest(request_id="r", instance_uuid="u")),
        (msg.TASK_CONSOLE_OUTPUT, "console_output",
         msg.ConsoleOutputRequest(request_id="r", instance_uuid="u", length=10)),
        (msg.TASK_SNAPSHOT, "snapshot",
         msg.SnapshotRequest(request_id="r", instance_uuid="u", image_id="i",
                             upload_url="http://127.0.0.1/x", token="t")),
        (msg.TASK_REBUILD, "rebuild", msg.SpawnRequest(
            request_id="r", instance_uuid="u", name="n", hostname="n", vcpus=1, memory_mb=64,
            root_gb=1)),
        (msg.TASK_RESIZE, "resize", msg.SpawnRequest(
            request_id="r", instance_uuid="u", name="n", hostname="n", vcpus=2, memory_mb=64,
            root_gb=2)),
    ],
)
def test_each_instance_action_has_a_task_that_hands_its_request_to_the_manager(
    task_name: str, method: str, payload: msg.Message
) -> None:
    app = create_app(AgentConfig(host="node7"))
    manager = RecordingManager()
    tasks = register_tasks(app, manager)  # type: ignore[arg-type]
    assert task_name in app.tasks
    tasks[task_name](payload.to_dict())
    assert manager.calls == [(method, payload)]


# One request of each type a host task can take.
SAMPLE_REQUESTS: dict[type[msg.Message], msg.Message] = {
    request.__class__: request
    for request in (
        msg.SpawnRequest(request_id="r", instance_uuid="u", name="n", hostname="n", vcpus=1,
                         memory_mb=64, root_gb=1, image=msg.ImageRef(id="i", token="t")),
        msg.DestroyRequest(request_id="r", instance_uuid="u"),
        msg.PowerRequest(request_id="r", instance_uuid="u", timeout=7),
        msg.RebootRequest(request_id="r", instance_uuid="u", reboot_type=msg.REBOOT_HARD),
        msg.ConsoleOutputRequest(request_id="r", instance_uuid="u", length=10),
        msg.SnapshotRequest(request_id="r", instance_uuid="u", image_id="i",
                            upload_url="http://127.0.0.1/x", token="t"),
        msg.MigrationRequest(
            request_id="r", instance_uuid="u", migration_id="7", source_host="a",
            dest_host="b", dest_uri="qemu+tcp://10.0.0.2/system", live=False,
            spawn=msg.SpawnRequest(request_id="r", instance_uuid="u", name="n", hostname="n",
                                   vcpus=2, memory_mb=64, root_gb=0, block_devices=[
                                       msg.BlockDevice(volume_id="v", device="vda",
                                                       boot_index=0)])),
        msg.RescueRequest(
            request_id="r", instance_uuid="u", image=msg.ImageRef(id="rescue", token="t"),
            spawn=msg.SpawnRequest(request_id="r", instance_uuid="u", name="n", hostname="n",
                                   vcpus=1, memory_mb=64, root_gb=1,
                                   restore_from=msg.ImageRef(id="shelved"))),
        msg.InterfaceRequest(request_id="r", instance_uuid="u", port_id="p", networks=[
            msg.NetworkInfo(network_id="n", network_name="net", port_id="p",
                            mac_address="fa:16:3e:00:00:01")]),
        msg.PortsRefresh(request_id="r", removed=["p"], ports=[
            msg.NetworkInfo(network_id="n", network_name="net", port_id="q",
                            mac_address="fa:16:3e:00:00:02", network_type="vxlan",
                            segmentation_id=7, rules=[msg.SecurityRule(direction="ingress",
                                                                       protocol="tcp",
                                                                       port_min=22,
                                                                       port_max=22,
                                                                       remote=[])])]),
        msg.RouterSpec(request_id="r", router_id="rt", floating_ips=[
            msg.FloatingMapping(floating_ip="203.0.113.9", fixed_ip="10.0.0.9")]),
        msg.VolumeAttachRequest(request_id="r", instance_uuid="u", attachment_id="a",
                                device=msg.BlockDevice(volume_id="v", device="vdb", connection={
                                    "driver_volume_type": "nbd", "host": "10.0.0.5",
                                    "port": 10809, "export": "v"})),
    )
}


def test_every_task_the_manager_declares_is_registered_with_its_request_type() -> None:
    app = create_app(AgentConfig(host="node7"))
    manager = RecordingManager()
    tasks = register_tasks(app, manager)  # type: ignore[arg-type]
    declared = host_tasks()
    assert set(tasks) == set(declared)
    for name, task in declared.items():
        registered = app.tasks[name]
        assert (registered.autoretry_for, registered.max_retries) == (
            task.retry_for, task.max_retries
        )
        request = SAMPLE_REQUESTS[task.request_type]
        tasks[name](request.to_dict())
        method, received = manager.calls[-1]
        assert (method, type(received), received) == (task.method_name, task.request_type, request)


def test_the_manager_serves_every_task_the_contract_sends_to_a_host() -> None:
    host_task_names = {
        value for name, value in vars(msg).items()
        if name.startswith("TASK_") and value.startswith(msg.COMPUTE_QUEUE_PREFIX)
    }
    assert set(host_tasks()) == host_task_names


def test_a_refused_destroy_is_retried_and_every_task_retries_a_failed_report() -> None:
    declared = host_tasks()
    destroy = declared.pop(msg.TASK_DESTROY)
    assert (destroy.retry_for, destroy.max_retries) == (
        (DriverError, NetworkError, ReportError), 8
    )
    # The data plane's tasks have no event to report a failure in: they are retried too.
    data_plane = {declared.pop(name) for name in (
        msg.TASK_REFRESH_PORTS, msg.TASK_SYNC_ROUTER, msg.TASK_REMOVE_ROUTER)}
    assert {(task.retry_for, task.max_retries) for task in data_plane} == {
        ((NetworkError, ReportError), 5)
    }
    assert {(task.retry_for, task.max_retries) for task in declared.values()} == {
        ((ReportError,), 5)
    }


def test_the_heartbeat_sweeps_the_image_cache_every_so_many_beats() -> None:
    manager = RecordingManager()
    heartbeat = Heartbeat(manager, interval=0.01, sweep_every=2)  # type: ignore[arg-type]
    heartbeat.start()
    assert manager.reported.wait(5)
    heartbeat.stop()
    assert manager.sweeps == heartbeat.beats // 2 >= 1


def test_the_sweep_runs_about_every_ten_minutes_by_default() -> None:
    assert Heartbeat(RecordingManager(), interval=10).sweep_every == 60  # type: ignore[arg-type]


def test_heartbeat_reports_at_once_and_then_every_interval_until_stopped() -> None:
    manager = RecordingManager()
    heartbeat = Heartbeat(manager, interval=0.01)  # type: ignore[arg-type]
    heartbeat.start()
    heartbeat.start()  # a second ready signal must not start a second thread
    assert manager.reported.wait(5)
    heartbeat.stop()
    count = manager.report_count
    threading.Event().wait(0.05)
    assert manager.report_count == count


class RecordingApp:
    def __init__(self, fail: bool = False) -> None:
        self.sent: list[tuple[str, Any, dict[str, Any]]] = []
        self.fail = fail

    def send_task(self, name: str, args: Any = None, **options: Any) -> None:
        if self.fail:
            raise ConnectionError("redis is down")
        self.sent.append((name, json.loads(json.dumps(args)), options))


def test_reports_go_to_the_conductor_queue_as_json_dicts() -> None:
    app = RecordingApp()
    reporter = CeleryReporter(app)
    event = msg.InstanceEvent(
        request_id="r", instance_uuid="u", host="h", event=msg.EVENT_SPAWNED,
        power_state=msg.POWER_RUNNING,
    )
    report = msg.HostReport(
        host="h", hypervisor_type="TEST", hypervisor_version=2, hypervisor_hostname="hv",
        host_ip="127.0.0.1", vcpus=16, memory_mb=3072, local_gb=10,
        domains=[msg.DomainState(uuid="u", power_state=msg.POWER_RUNNING)],
    )
    reporter.instance_event(event)
    reporter.host_report(report)
    assert app.sent == [
        (msg.TASK_INSTANCE_EVENT, [event.to_dict()], {"queue": msg.CONDUCTOR_QUEUE}),
        (msg.TASK_HOST_REPORT, [report.to_dict()], {"queue": msg.CONDUCTOR_QUEUE}),
    ]
    assert msg.HostReport.from_dict(app.sent[1][1][0]) == report


def test_a_publish_failure_becomes_a_report_error() -> None:
    reporter = CeleryReporter(RecordingApp(fail=True))
    with pytest.raises(ReportError, match="redis is down"):
        reporter.instance_event(
            msg.InstanceEvent(request_id="r", instance_uuid="u", host="h", event="destroyed")
        )
