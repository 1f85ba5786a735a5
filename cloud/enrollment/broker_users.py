"""Broker users of joined hosts: each may use its own queue and publish to the conductor's, and
nothing else, so a compromised host can neither read another host's work nor delete the
conductor's queue.

    BrokerUsers          the interface the join and the revocation use (`driver()` picks one)
    ├── RabbitMQUsers    rabbitmqctl: a user with permissions on the control plane's vhost
    ├── RedisUsers       ACL SETUSER on the broker's Redis
    └── FakeBrokerUsers  remembers what it was asked (unit tests)

What each broker must allow was found by trying, with kombu and Celery as the agent uses them;
the reasons are next to the rules. The agent's side of the bargain is in compute_agent.reporter
(how it publishes) and compute_agent.worker (its Redis keys). KUMO_BROKER_CREDENTIALS chooses
the driver: auto (by CELERY_BROKER_URL's scheme), rabbitmq, redis or fake.
"""

from __future__ import annotations

import abc
import logging
import re
import shlex
import subprocess
from collections.abc import Callable, Sequence
from typing import Any, ClassVar
from urllib.parse import quote, unquote, urlsplit

import redis
from django.conf import settings

from compute_agent import messages as msg

log = logging.getLogger(__name__)


class BrokerUserError(Exception):
    """The broker did not make or remove the user; the message is safe to show (no secret)."""


class BrokerUsers(abc.ABC):
    kind: ClassVar[str]

    def username(self, host: str) -> str:
        return f"{settings.KUMO_BROKER_USER_PREFIX}{host}"

    @abc.abstractmethod
    def create(self, host: str, password: str) -> str:
        """Make the host's user with `password`, replacing any it had (and so ending its old
        connections); return the user's name."""

    @abc.abstractmethod
    def delete(self, host: str) -> None:
        """Remove the host's user, if it exists; its connections end."""

    def host_url(self, username: str, password: str) -> str:
        """The broker as hosts reach it (KUMO_HOST_BROKER_URL, else CELERY_BROKER_URL), with the
        host's user and password in place of any the control plane uses."""
        base = urlsplit(settings.KUMO_HOST_BROKER_URL or settings.CELERY_BROKER_URL)
        hostname = base.hostname or "127.0.0.1"
        if ":" in hostname:
            hostname = f"[{hostname}]"
        port = f":{base.port}" if base.port else ""
        netloc = f"{quote(username, safe='')}:{quote(password, safe='')}@{hostname}{port}"
        return base._replace(netloc=netloc).geturl()


# --- RabbitMQ

def _exactly(*names: str) -> str:
    return "^(" + "|".join(re.escape(name) for name in names) + ")$"


def rabbitmq_permissions(host: str) -> tuple[str, str, str]:
    """configure, write and read: the three regular expressions of `set_permissions`.

    - configure its queue and the exchange of the same name (Celery declares both, and binds them);
    - write its queue (binding it) and the `conductor` exchange (its reports). Not the default
      exchange `amq.default`, through which it could put work into any queue, and not the
      conductor's queue (configuring it includes deleting it): the agent publishes to the
      `conductor` exchange and declares nothing (compute_agent.reporter);
    - read its queue (consuming) and its exchange (binding).
    """
    queue = msg.compute_queue(host)
    return _exactly(queue), _exactly(queue, msg.CONDUCTOR_QUEUE), _exactly(queue)


Runner = Callable[..., subprocess.CompletedProcess[str]]

# rabbitmqctl's exit status when the user does not exist (EX_NOUSER).
_NO_SUCH_USER = 67


class RabbitMQUsers(BrokerUsers):
    """Users made with rabbitmqctl (KUMO_RABBITMQCTL: the command, e.g. `sudo -n rabbitmqctl` or
    `rabbitmqctl -n rabbit@broker`), on the vhost of CELERY_BROKER_URL. Passwords go on its
    standard input, never on a command line other users can read."""

    kind = "rabbitmq"

    def __init__(self, command: Sequence[str], vhost: str, run: Runner = subprocess.run) -> None:
        self.command = list(command)
        self.vhost = vhost
        self._run = run

    def _ctl(self, *args: str, stdin: str | None = None, missing_ok: bool = False) -> None:
        try:
            done = self._run([*self.command, "-q", *args], input=stdin, capture_output=True,
                             text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise BrokerUserError(f"rabbitmqctl {args[0]} failed: {exc}") from exc
        if done.returncode == 0 or (missing_ok and done.returncode == _NO_SUCH_USER):
            return
        reason = (done.stderr or done.stdout or "").strip().splitlines()
        raise BrokerUserError(f"rabbitmqctl {args[0]} failed ({done.returncode}): "
                              f"{reason[-1] if reason else 'no output'}")

    def create(self, host: str, password: str) -> str:
        user = self.username(host)
        self._ctl("delete_user", user, missing_ok=True)
        self._ctl("add_user", user, stdin=password)
        self._ctl("set_permissions", "-p", self.vhost, user, *rabbitmq_permissions(host))
        return user

    def delete(self, host: str) -> None:
        self._ctl("delete_user", self.username(host), missing_ok=True)


# --- Redis

# kombu's Redis transport keeps a queue's priority levels in lists named queue + this + level.
KOMBU_PRIORITY_SEP = "\x06\x16"

# What kombu and Celery send for a consumer with acknowledgement emulation and a publisher that
# declares nothing (kombu 5.7, redis-py 5; tests/integration/test_host_credentials.py runs the real
# agent under these rules). No KEYS, SCAN or CLIENT LIST (they would name other hosts' keys and
# connections). Redis checks a script's commands and keys against the same rules, so the scripts
# redis-py's lock runs can touch nothing more than the user could itself.
REDIS_COMMANDS = (
    # (not CLIENT SETINFO: Redis 7.0 does not know it, and redis-py goes on without it)
    "auth", "hello", "ping", "select", "echo", "quit", "reset", "client|setname",
    "brpop", "lpush", "llen",  # the queue
    "sadd", "smembers",  # the binding of its queue, made when it declares it
    "hset", "hget", "hdel", "zadd", "zrem", "zrange", "zrevrangebyscore",  # unacknowledged ones
    "set", "get", "del", "multi", "exec", "watch", "unwatch",  # the restore mutex…
    "evalsha", "eval", "script|load",  # …which redis-py releases with a script
)


def redis_rules(host: str) -> list[str]:
    """The ACL SETUSER rules of the host's user: full access to its own keys, push-only to the
    conductor's list (its reports; %W lets LPUSH in and nothing out)."""
    queue = msg.compute_queue(host)
    own = [
        queue,
        f"{queue}{KOMBU_PRIORITY_SEP}*",
        f"_kombu.binding.{queue}",
        f"_kombu.binding_permanent.{queue}",
        *msg.redis_unacked_keys(host).values(),
    ]
    return [
        "resetkeys", "resetchannels", "-@all",
        *(f"+{command}" for command in REDIS_COMMANDS),
        *(f"~{key}" for key in own),
        f"%W~{msg.CONDUCTOR_QUEUE}",
    ]


class RedisUsers(BrokerUsers):
    """ACL users on the broker's Redis. Redis keeps them in memory: with an `aclfile` configured
    each change is saved to it (ACL SAVE); without one they are gone when Redis restarts, and a
    warning says so (docs/adding-a-host.md)."""

    kind = "redis"

    def __init__(self, client: Any) -> None:
        self.client = client

    def create(self, host: str, password: str) -> str:
        user = self.username(host)
        try:
            self.client.execute_command(
                "ACL", "SETUSER", user, "reset", "on", f">{password}", *redis_rules(host))
        except redis.RedisError as exc:
            raise BrokerUserError(f"Redis refused ACL SETUSER {user}: {exc}") from exc
        self._save()
        return user

    def delete(self, host: str) -> None:
        user = self.username(host)
        try:
            self.client.execute_command("ACL", "DELUSER", user)
        except redis.RedisError as exc:
            raise BrokerUserError(f"Redis refused ACL DELUSER {user}: {exc}") from exc
        self._save()

    def _save(self) -> None:
        try:
            self.client.execute_command("ACL", "SAVE")
        except redis.ResponseError:
            log.warning("Redis has no aclfile: host broker users are lost when Redis restarts "
                        "(docs/adding-a-host.md)")
        except redis.RedisError as exc:
            raise BrokerUserError(f"Redis refused ACL SAVE: {exc}") from exc


# --- fake

class FakeBrokerUsers(BrokerUsers):
    """A broker that records what it is asked. `users` maps user name to (password, host);
    `fail_with`, when set, is raised by the next call."""

    kind = "fake"
    users: ClassVar[dict[str, tuple[str, str]]] = {}
    calls: ClassVar[list[tuple[str, str]]] = []
    fail_with: ClassVar[BrokerUserError | None] = None

    @classmethod
    def reset(cls) -> None:
        cls.users.clear()
        cls.calls.clear()
        cls.fail_with = None

    def _maybe_fail(self) -> None:
        failure, FakeBrokerUsers.fail_with = FakeBrokerUsers.fail_with, None
        if failure is not None:
            raise failure

    def create(self, host: str, password: str) -> str:
        self.calls.append(("create", host))
        self._maybe_fail()
        user = self.username(host)
        self.users[user] = (password, host)
        return user

    def delete(self, host: str) -> None:
        self.calls.append(("delete", host))
        self._maybe_fail()
        self.users.pop(self.username(host), None)


def driver() -> BrokerUsers:
    """The driver KUMO_BROKER_CREDENTIALS names, for the broker of CELERY_BROKER_URL."""
    url = urlsplit(settings.CELERY_BROKER_URL)
    kind = settings.KUMO_BROKER_CREDENTIALS
    if kind == "auto":
        kind = ("rabbitmq" if url.scheme in ("amqp", "amqps", "pyamqp")
                else "redis" if url.scheme in ("redis", "rediss") else kind)
    if kind == "rabbitmq":
        return RabbitMQUsers(shlex.split(settings.KUMO_RABBITMQCTL), unquote(url.path[1:]) or "/")
    if kind == "redis":
        return RedisUsers(redis.Redis.from_url(settings.CELERY_BROKER_URL))
    if kind == "fake":
        return FakeBrokerUsers()
    raise BrokerUserError(f"no broker user driver for {kind!r} (KUMO_BROKER_CREDENTIALS, broker "
                          f"{url.scheme}://)")
