"""One contract, every driver: the same lifecycle and power rules hold on libvirt's test driver and
on the fake (compute_agent.drivers.fake), so a test that moves guests on the fake tests the rules
the real driver keeps."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from compute_agent import messages as msg
from compute_agent.drivers.base import Driver, DriverError


@pytest.fixture
def request_(any_driver: Driver) -> Iterator[msg.SpawnRequest]:
    spawn = msg.SpawnRequest(request_id="r", instance_uuid=str(uuid.uuid4()), name="n",
                             hostname="n", vcpus=1, memory_mb=128, root_gb=1)
    yield spawn
    any_driver.destroy(spawn.instance_uuid)


def test_spawn_is_idempotent_and_the_domain_is_listed(
    any_driver: Driver, request_: msg.SpawnRequest
) -> None:
    assert any_driver.spawn(request_) == msg.POWER_RUNNING
    assert any_driver.spawn(request_) == msg.POWER_RUNNING
    listed = [d for d in any_driver.list_domains() if d.uuid == request_.instance_uuid]
    assert [d.power_state for d in listed] == [msg.POWER_RUNNING]


def test_power_actions_succeed_again_when_their_state_already_holds(
    any_driver: Driver, request_: msg.SpawnRequest
) -> None:
    uuid_ = request_.instance_uuid
    any_driver.spawn(request_)
    assert any_driver.pause(uuid_) == any_driver.pause(uuid_) == msg.POWER_PAUSED
    assert any_driver.unpause(uuid_) == any_driver.unpause(uuid_) == msg.POWER_RUNNING
    assert any_driver.stop(uuid_, 0) == any_driver.stop(uuid_, 0) == msg.POWER_SHUTDOWN
    assert any_driver.start(uuid_) == any_driver.start(uuid_) == msg.POWER_RUNNING


def test_an_action_on_a_missing_domain_or_from_a_wrong_state_is_a_driver_error(
    any_driver: Driver, request_: msg.SpawnRequest
) -> None:
    with pytest.raises(DriverError):
        any_driver.start(request_.instance_uuid)
    any_driver.spawn(request_)
    any_driver.stop(request_.instance_uuid, 0)
    with pytest.raises(DriverError):
        any_driver.pause(request_.instance_uuid)


def test_destroy_removes_the_domain_and_a_second_destroy_is_success(
    any_driver: Driver, request_: msg.SpawnRequest
) -> None:
    any_driver.spawn(request_)
    any_driver.destroy(request_.instance_uuid)
    any_driver.destroy(request_.instance_uuid)
    assert any_driver.power_state(request_.instance_uuid) == msg.POWER_NOSTATE


def test_nothing_to_abort_or_force_without_a_migration(
    any_driver: Driver, request_: msg.SpawnRequest
) -> None:
    any_driver.spawn(request_)
    assert any_driver.abort_migration(request_.instance_uuid) is False
    assert any_driver.force_complete_migration(request_.instance_uuid) is False
    assert any_driver.power_state(request_.instance_uuid) == msg.POWER_RUNNING
