"""The operations registry (cloud/compute/operations.py) is the one place an operation is declared:
these tests fail while any part an entry names is missing, the way each layer consumes it."""

from __future__ import annotations

import pytest

from cloud.api.compute import server_actions
from cloud.compute import operations, states
from cloud.compute.operations import REGISTRY
from cloud.conductor import operation_events
from cloud.dashboard import buttons
from cloud.identity.policy import RULES
from compute_agent import messages as msg

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
        operations.runs("start", "lock")(lambda ctx, instance: None)
    assert operations.runner_for(REGISTRY["start"]).__name__ == "run"  # still the generic one
