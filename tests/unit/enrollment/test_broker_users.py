"""What each broker is asked when a host joins or is revoked (the rules themselves are proven on
the real brokers in tests/integration/test_host_credentials.py)."""

from __future__ import annotations

import re
import subprocess

import pytest

from cloud.enrollment import broker_users
from cloud.enrollment.broker_users import BrokerUserError, RabbitMQUsers, RedisUsers


class Ctl:
    """rabbitmqctl as a recorder; `codes` are the exit statuses of the next calls."""

    def __init__(self, *codes: int) -> None:
        self.calls: list[tuple[list[str], str | None]] = []
        self.codes = list(codes)

    def __call__(self, argv, input=None, **_):
        self.calls.append((argv, input))
        code = self.codes.pop(0) if self.codes else 0
        return subprocess.CompletedProcess(argv, code, "", "Error: no_such_user" if code else "")


def test_rabbitmq_limits_a_host_to_its_queue_and_the_conductor_exchange():
    configure, write, read = broker_users.rabbitmq_permissions("compute-7")
    assert re.fullmatch(configure, "compute.compute-7")
    assert re.fullmatch(write, "conductor") and re.fullmatch(write, "compute.compute-7")
    assert re.fullmatch(read, "compute.compute-7")
    for other in ("compute.compute-8", "compute.compute-7x", "computeXcompute-7", "amq.default",
                  "", "celery", "compute.compute-7.evil"):
        assert not re.fullmatch(write, other) and not re.fullmatch(read, other), other
    assert not re.fullmatch(configure, "conductor") and not re.fullmatch(read, "conductor")


def test_rabbitmq_user_is_made_with_its_password_on_stdin_never_in_argv(settings):
    settings.KUMO_BROKER_USER_PREFIX = "kumo-host-"
    ctl = Ctl(67)  # the first call, delete_user of a user that does not exist yet
    users = RabbitMQUsers(["sudo", "-n", "rabbitmqctl"], "kumo", run=ctl)
    assert users.create("compute-7", "pw-secret") == "kumo-host-compute-7"
    argvs = [argv for argv, _ in ctl.calls]
    assert [argv[4] for argv in argvs] == ["delete_user", "add_user", "set_permissions"]
    assert all(argv[:4] == ["sudo", "-n", "rabbitmqctl", "-q"] for argv in argvs)
    assert ctl.calls[1][1] == "pw-secret"
    assert all("pw-secret" not in " ".join(argv) for argv in argvs)
    assert argvs[2][5:8] == ["-p", "kumo", "kumo-host-compute-7"]


def test_a_rabbitmqctl_failure_is_reported_without_the_password():
    users = RabbitMQUsers(["rabbitmqctl"], "/", run=Ctl(0, 69))
    with pytest.raises(BrokerUserError, match=r"add_user failed \(69\)") as failure:
        users.create("compute-7", "pw-secret")
    assert "pw-secret" not in str(failure.value)


class FakeRedis:
    def __init__(self) -> None:
        self.commands: list[tuple[str, ...]] = []

    def execute_command(self, *args: str) -> str:
        self.commands.append(args)
        return "OK"


def test_redis_user_has_its_own_keys_and_may_only_push_to_the_conductor(settings):
    settings.KUMO_BROKER_USER_PREFIX = "kumo-host-"
    client = FakeRedis()
    RedisUsers(client).create("compute-7", "pw-secret")
    setuser, save = client.commands
    assert setuser[:5] == ("ACL", "SETUSER", "kumo-host-compute-7", "reset", "on")
    rules = setuser[5:]
    assert rules[0] == ">pw-secret" and "-@all" in rules
    keys = sorted(rule for rule in rules if rule.startswith(("~", "%")))
    assert keys == sorted([
        "~compute.compute-7", "~compute.compute-7\x06\x16*",
        "~_kombu.binding.compute.compute-7", "~_kombu.binding_permanent.compute.compute-7",
        "~unacked.compute.compute-7", "~unacked_index.compute.compute-7",
        "~unacked_mutex.compute.compute-7", "%W~conductor",
    ])
    assert not {"+keys", "+scan", "+client|list", "+@all", "+flushdb"} & set(rules)
    assert save == ("ACL", "SAVE")
