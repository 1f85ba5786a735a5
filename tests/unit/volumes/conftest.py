"""Fixtures of the block-storage tests: people, a volume host that reported, and the volume host's
answers, given to the conductor as a volume host would send them (no mocks of our own code)."""

from __future__ import annotations

import pytest

from cloud.conductor import volume_events
from cloud.identity.context import RequestContext
from cloud.outbox.models import OutboxMessage
from cloud.volumes.models import Volume
from compute_agent import messages as msg
from tests.personas import Persona, make_persona

HOST = "vol-1"


def ctx_of(persona: Persona, roles: tuple[str, ...]) -> RequestContext:
    return RequestContext(user_id=str(persona.user.id), user_name=persona.user.name,
                          project_id=str(persona.project.id), project_name=persona.project.name,
                          roles=roles, request_id="req-test")


@pytest.fixture
def people(db):
    admin = make_persona("vol-admin", "alpha", ["admin", "member", "reader"])
    member = make_persona("vol-bob", "alpha", ["member", "reader"])
    reader = make_persona("vol-carol", "alpha", ["reader"])
    other = make_persona("vol-mallory", "beta", ["member", "reader"])
    return {
        "admin": (admin, ctx_of(admin, ("admin", "member", "reader"))),
        "member": (member, ctx_of(member, ("member", "reader"))),
        "reader": (reader, ctx_of(reader, ("reader",))),
        "other": (other, ctx_of(other, ("member", "reader"))),
    }


def report(host: str = HOST, free_gb: int = 100, zone: str = "nova") -> None:
    volume_events.apply_volume_host_report(msg.VolumeHostReport(
        host=host, backend="nbd", total_gb=free_gb, free_gb=free_gb, availability_zone=zone))


@pytest.fixture
def volume_host(db):
    report()
    return HOST


def sent(task: str) -> list[dict]:
    """The requests sent (through the outbox) for `task`, oldest first."""
    return [m.args[0] for m in OutboxMessage.objects.filter(task=task).order_by("id")]


def answer(volume: Volume | str, event: str, **fields) -> None:
    """The volume host's answer, applied as the conductor applies it."""
    volume_id = str(getattr(volume, "pk", volume))
    host = fields.pop("host", HOST)
    volume_events.apply_volume_event(msg.VolumeEvent(
        request_id="req-test", volume_id=volume_id, host=host, event=event, **fields))


def created(volume: Volume | str, size_gb: int = 1) -> None:
    volume_id = str(getattr(volume, "pk", volume))
    answer(volume_id, msg.EVENT_VOLUME_CREATED, size_gb=size_gb, connection={
        "driver_volume_type": "nbd", "host": "10.0.0.9", "port": 10809, "export": volume_id})
