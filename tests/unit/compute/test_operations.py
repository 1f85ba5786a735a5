"""The operations registry (cloud/compute/operations.py) is the one place an operation is declared:
these tests fail while any part an entry names is missing, the way each layer consumes it."""

from __future__ import annotations

import shutil
import uuid
from typing import Any

import pytest

from cloud.api.compute import server_actions
from cloud.compute import operations, states
from cloud.compute.operations import REGISTRY
from cloud.conductor import operation_events
from cloud.dashboard import buttons
from cloud.identity.policy import RULES
from compute_agent import messages as msg
from compute_agent.drivers.libvirt import LibvirtDriver
from compute_agent.manager import ComputeManager, HostTask, host_tasks
from tests.unit.compute_agent.fakes import RecordingReporter
from tests.unit.compute_agent.image_server import ImageServer

OFFERED = [op for op in REGISTRY.values() if op.api_name or op.button]


@pytest.mark.parametrize("op", REGISTRY.values(), ids=lambda op: op.name)
def test_every_rule_an_operation_names_is_in_the_policy_table(op):
    assert op.rule is None or op.rule in RULES, f"add {op.rule!r} to cloud/identity/policy.py"
    assert op.rule is not None or not (op.api_name or op.button), "offered without a rule"


@pytest.mark.parametrize("op", OFFERED, ids=lambda op: op.name)
def test_every_offered_operation_has_something_that_carries_it_out(op):
    assert operations.runner_for(op) is not None, f"no @runs({op.name!r}) and no host task"


@pytest.mark.parametrize("op", [op for op in REGISTRY.values() if op.host_task],
                         ids=lambda op: op.name)
def test_every_host_task_is_a_task_of_the_contract(op):
    tasks = {value for key, value in vars(msg).items() if key.startswith("TASK_")}
    assert op.host_task in tasks


@pytest.mark.parametrize("op", [op for op in REGISTRY.values() if op.task_state and op.host_task
                                and op.name != "delete"], ids=lambda op: op.name)
def test_a_task_run_by_a_host_is_finished_by_one_of_its_events(op):
    assert op.finished_by in operation_events.FINISHES, "the task would never end"
    assert op.task_state in operation_events.FINISHES[op.finished_by]
    assert op.task_state in states.TASK_STATES


def test_the_api_and_the_dashboard_offer_exactly_what_the_registry_declares():
    api = {op.api_name for op in REGISTRY.values() if op.api_name}
    assert set(operations.BY_API_NAME) == api
    assert set(buttons.BUTTONS) == {op.name for op in REGISTRY.values() if op.button}
    # Arguments and responses the API knows must belong to operations that exist.
    assert set(server_actions._ARGUMENTS) <= set(REGISTRY)
    assert set(server_actions._RESPONSES) <= set(REGISTRY)


def test_a_runner_for_an_unknown_operation_or_a_second_runner_is_refused():
    with pytest.raises(KeyError):
        operations.runs("no-such-operation")(lambda ctx, instance: None)
    with pytest.raises(ValueError):
        operations.runs("pause", "lock")(lambda ctx, instance: None)
    assert operations.runner_for(REGISTRY["pause"]).__name__ == "run"  # still the generic one


# --- the agent's side: every host task an operation names is served, and its driver can do it


def test_every_host_task_an_operation_names_is_served_by_the_agent():
    served = host_tasks()
    missing = {op.name: op.host_task for op in REGISTRY.values()
               if op.host_task and op.host_task not in served}
    assert not missing, "add an @host_task method to compute_agent/manager.py"


@pytest.fixture
def agent(tmp_path):
    """A real agent manager on libvirt's test driver, reporting into a list."""
    driver = LibvirtDriver("test:///default", instances_dir=tmp_path / "instances")
    (tmp_path / "instances").mkdir()
    manager = ComputeManager("host-a", driver, RecordingReporter(), host_ip="192.0.2.10")
    made: list[str] = []
    yield manager, made
    for instance_uuid in made:
        driver.destroy(instance_uuid)
    driver.close()


# What the agent does to put a running domain into a vm_state an operation may start from.
_INTO_STATE = {
    states.ACTIVE: lambda driver, uuid: None,
    states.RESIZED: lambda driver, uuid: None,
    states.ERROR: lambda driver, uuid: None,
    states.STOPPED: lambda driver, uuid: driver.stop(uuid, 0),
    states.PAUSED: lambda driver, uuid: driver.pause(uuid),
    states.SUSPENDED: lambda driver, uuid: driver.suspend(uuid),
    states.RESCUED: lambda driver, uuid: driver.rescue(
        msg.RescueRequest(request_id="req-rescue", instance_uuid=uuid)),
    states.SHELVED: lambda driver, uuid: driver.stop(uuid, 0),
}
# The events that answer the host tasks that do not finish a task of their own.
_ANSWERS = {msg.TASK_CONSOLE_OUTPUT: msg.EVENT_CONSOLE_OUTPUT, msg.TASK_DESTROY: msg.EVENT_DESTROYED}


def _request(task: HostTask, instance_uuid: str, image_server: ImageServer) -> msg.Message:
    """The request the control plane would send for this task, with only what it needs."""
    base: dict[str, Any] = {"request_id": f"req-{task.name}", "instance_uuid": instance_uuid}
    if task.request_type is msg.SpawnRequest:
        return msg.SpawnRequest(**base, name="vm", hostname="vm", vcpus=1, memory_mb=128,
                                root_gb=1)
    if task.request_type is msg.SnapshotRequest:
        return msg.SnapshotRequest(**base, image_id="img-snap",
                                   upload_url=image_server.url("v2/images/img-snap/file"))
    if task.request_type is msg.InterfaceRequest:
        return msg.InterfaceRequest(**base, port_id="port-1", networks=[msg.NetworkInfo(
            network_id="net-1", network_name="net", port_id="port-1",
            mac_address="fa:16:3e:00:00:01")])
    if task.request_type is msg.VolumeAttachRequest:
        return msg.VolumeAttachRequest(**base, device=msg.BlockDevice(
            volume_id="5b8e2c1a-4a8e-4f51-9a43-1d2b7c3e9f00", device="vdb", connection={
                "driver_volume_type": "nbd", "host": "192.0.2.50", "port": 10809,
                "export": "5b8e2c1a-4a8e-4f51-9a43-1d2b7c3e9f00"}))
    return task.request_type(**base)


@pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img is not installed")
@pytest.mark.parametrize("op", [op for op in REGISTRY.values() if op.host_task],
                         ids=lambda op: op.name)
def test_the_agent_carries_out_every_host_operation_on_libvirts_test_driver(
    agent, op, image_server
):
    manager, made = agent
    spawned = manager.spawn(_request(host_tasks()[msg.TASK_SPAWN], str(uuid.uuid4()), image_server))
    assert spawned.event == msg.EVENT_SPAWNED
    made.append(spawned.instance_uuid)
    start_from = next(vm for vm in _INTO_STATE if op.vm_states is None or vm in op.vm_states)
    _INTO_STATE[start_from](manager.driver, spawned.instance_uuid)
    task = host_tasks()[op.host_task]
    event = getattr(manager, task.method_name)(_request(task, spawned.instance_uuid, image_server))
    assert event.event == (op.finished_by or _ANSWERS[op.host_task]), event.message
