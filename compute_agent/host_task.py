"""How a ComputeManager method declares the Celery task it serves: @host_task(name).

The worker (compute_agent.worker) registers exactly the declared methods, parsing each payload into
the request type the method is annotated with (compute_agent.manager.host_tasks lists them).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar, get_type_hints

from compute_agent import messages as msg
from compute_agent.reporter import ReportError


@dataclass(frozen=True)
class HostTask:
    """A Celery task the agent serves on its host queue: the ComputeManager method that runs it,
    the request its payload is parsed into, and when it is run again (with backoff)."""

    name: str
    request_type: type[msg.Message]
    method_name: str
    # Every host task is idempotent, so running it again is safe. A report that could not be
    # published is the one failure all of them retry: the rest they report themselves
    # (spawn_failed, action_failed).
    retry_for: tuple[type[Exception], ...] = (ReportError,)
    max_retries: int = 5


# Where host_task leaves its HostTask on the method it declares.
_HOST_TASK_ATTRIBUTE = "_kumo_host_task"

Method = TypeVar("Method", bound=Callable[..., object])


def host_task(
    name: str,
    *,
    retry_for: tuple[type[Exception], ...] = HostTask.retry_for,
    max_retries: int = HostTask.max_retries,
) -> Callable[[Method], Method]:
    """Declare that a ComputeManager method serves the Celery task `name` (a msg.TASK_* name).

    The method takes one request annotated with its compute_agent.messages type; the annotation is
    read now, so a method that lacks it is refused when its class is defined, not when a message
    arrives.
    """

    def declare(method: Method) -> Method:
        task = HostTask(
            name=name,
            request_type=_request_type(method),
            method_name=method.__name__,
            retry_for=retry_for,
            max_retries=max_retries,
        )
        setattr(method, _HOST_TASK_ATTRIBUTE, task)
        return method

    return declare


def _request_type(method: Callable[..., object]) -> type[msg.Message]:
    where = getattr(method, "__qualname__", repr(method))
    parameters = list(inspect.signature(method).parameters)[1:]  # the first is self
    if len(parameters) != 1:
        raise TypeError(f"host task {where} must take exactly one request, not {parameters}")
    try:
        hints = get_type_hints(method)
    except NameError as exc:
        raise TypeError(f"host task {where}: cannot resolve its annotations: {exc}") from exc
    request_type = hints.get(parameters[0])
    if not (isinstance(request_type, type) and issubclass(request_type, msg.Message)):
        raise TypeError(
            f"host task {where}: annotate its request with its compute_agent.messages type "
            f"(found {request_type!r})"
        )
    return request_type


def declared_task(attribute: object) -> HostTask | None:
    """The HostTask a class attribute was declared to serve with @host_task, if any."""
    task = getattr(attribute, _HOST_TASK_ATTRIBUTE, None)
    return task if isinstance(task, HostTask) else None
