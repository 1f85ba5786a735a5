"""Console tokens as the service hands them out and takes them back (cloud/compute/consoles.py)."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.utils import timezone

from cloud import errors
from cloud.compute import consoles, states
from cloud.compute.models import ConsoleToken
from cloud.compute.servers import complete_delete
from tests.unit.consoles.fakes import context_of, mint, server_with_console


@pytest.fixture
def server(member):
    return server_with_console(member, port=5901)


def test_a_console_url_carries_a_long_random_token_and_only_its_hash_is_stored(member, server):
    url = consoles.create_console(context_of(member), server, "vnc", "novnc", "http://cloud:8000")
    assert url.startswith("http://cloud:8000/console/?token=")
    token = url.split("?token=", 1)[1]
    assert len(token) >= 43
    row = ConsoleToken.objects.get()
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(ConsoleToken.objects.values().get())
    assert (row.instance_id, row.host, row.host_address, row.port) == (
        server.uuid, "compute-1", "127.0.0.1", 5901)


def test_the_console_base_url_setting_points_console_urls_at_another_proxy(member, server, settings):
    settings.KUMO_CONSOLE_BASE_URL = "https://consoles.example:6080"
    url = consoles.create_console(context_of(member), server, "vnc", "novnc", "http://cloud:8000")
    assert url.startswith("https://consoles.example:6080/console/?token=")


def test_two_console_urls_never_share_a_token(member, server):
    assert mint(member, server) != mint(member, server)


def test_a_token_expires_after_the_configured_lifetime(member, server, settings):
    settings.KUMO_CONSOLE_TOKEN_TTL = 60
    mint(member, server)
    row = ConsoleToken.objects.get()
    assert timedelta(seconds=55) < row.expires_at - timezone.now() <= timedelta(seconds=60)


def test_a_token_opens_one_session_only(member, server):
    token = mint(member, server)
    target = consoles.consume_token(token)
    assert (target.host_address, target.port, target.instance_uuid) == (
        "127.0.0.1", 5901, str(server.uuid))
    with pytest.raises(consoles.ConsoleRefused) as refused:
        consoles.consume_token(token)
    assert refused.value.reason == consoles.USED


def test_an_expired_token_is_refused_and_says_so(member, server):
    token = mint(member, server)
    ConsoleToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(consoles.ConsoleRefused) as refused:
        consoles.consume_token(token)
    assert refused.value.reason == consoles.EXPIRED
    assert consoles.describe_token(token).state == consoles.EXPIRED


@pytest.mark.parametrize("token", [None, "", "short", "x" * 43, "a b c" * 10, "é" * 40])
def test_unknown_or_malformed_tokens_are_refused(db, token):
    with pytest.raises(consoles.ConsoleRefused) as refused:
        consoles.consume_token(token)
    assert refused.value.reason == consoles.INVALID


def test_an_instance_has_at_most_the_configured_number_of_open_sessions(member, server, settings):
    settings.KUMO_CONSOLE_MAX_SESSIONS = 2
    first, second, third = (mint(member, server) for _ in range(3))
    one = consoles.consume_token(first)
    consoles.consume_token(second)
    with pytest.raises(consoles.ConsoleRefused) as refused:
        consoles.consume_token(third)
    assert refused.value.reason == consoles.BUSY
    consoles.close_session(one)
    consoles.consume_token(third)  # the refusal did not burn it; a place is free now


def test_a_session_whose_proxy_stopped_rechecking_frees_its_place(member, server, settings):
    settings.KUMO_CONSOLE_MAX_SESSIONS = 1
    first, second = mint(member, server), mint(member, server)
    consoles.consume_token(first)
    stale = timezone.now() - timedelta(seconds=consoles.session_stale_after() + 1)
    ConsoleToken.objects.filter(used_at__isnull=False).update(seen_at=stale)
    consoles.consume_token(second)


def test_deleting_an_instance_removes_all_its_tokens_and_ends_its_sessions(member, server):
    token = mint(member, server)
    target = consoles.consume_token(token)
    unused = mint(member, server)
    complete_delete(str(server.uuid))
    assert not ConsoleToken.objects.exists()
    assert not consoles.session_alive(target)
    with pytest.raises(consoles.ConsoleRefused) as refused:
        consoles.consume_token(unused)
    assert refused.value.reason == consoles.INVALID


def test_an_instance_that_moved_to_another_host_refuses_its_old_tokens(member, server):
    token = mint(member, server)
    server_with_console(member, port=5902, name="elsewhere", host="compute-2")
    type(server).objects.filter(pk=server.pk).update(host="compute-2")
    with pytest.raises(consoles.ConsoleRefused) as refused:
        consoles.consume_token(token)
    assert refused.value.reason == consoles.MOVED


def test_a_guest_restarted_on_another_port_refuses_the_token_bound_to_the_old_one(member, server):
    token = mint(member, server)
    type(server).objects.filter(pk=server.pk).update(console_port=5907)
    with pytest.raises(consoles.ConsoleRefused) as refused:
        consoles.consume_token(token)
    assert refused.value.reason == consoles.MOVED


def test_a_stopped_guest_has_no_console(member, server):
    token = mint(member, server)
    type(server).objects.filter(pk=server.pk).update(vm_state=states.STOPPED, console_port=None)
    with pytest.raises(consoles.ConsoleRefused) as refused:
        consoles.consume_token(token)
    assert refused.value.reason == consoles.NOT_RUNNING


def test_an_open_session_ends_when_its_instance_is_deleted_or_moved(member, server):
    target = consoles.consume_token(mint(member, server))
    assert consoles.session_alive(target)
    type(server).objects.filter(pk=server.pk).update(task_state=states.DELETING)
    assert not consoles.session_alive(target)


def test_a_token_is_not_issued_for_a_server_without_a_screen(member):
    building = server_with_console(member, port=5901)
    type(building).objects.filter(pk=building.pk).update(vm_state=states.BUILDING, host=None)
    building.refresh_from_db()
    with pytest.raises(errors.Conflict):
        consoles.create_console(context_of(member), building, "vnc", "novnc", "http://x")
    assert not ConsoleToken.objects.exists()


def test_only_vnc_consoles_for_novnc_are_served(member, server):
    with pytest.raises(errors.BadRequest):
        consoles.create_console(context_of(member), server, "spice", "spice-html5", "http://x")


def test_looking_at_a_token_does_not_use_it(member, server):
    token = mint(member, server)
    state = consoles.describe_token(token)
    assert (state.state, state.instance_name) == ("ready", "vm1")
    consoles.consume_token(token)
    assert consoles.describe_token(token).state == consoles.USED


def test_issuing_a_token_forgets_tokens_long_expired(member, server, settings):
    old = mint(member, server)
    ConsoleToken.objects.update(expires_at=timezone.now() - timedelta(days=1))
    mint(member, server)
    assert ConsoleToken.objects.count() == 1
    assert consoles.describe_token(old).state == consoles.INVALID
