"""The action log links each request id to that request's timeline: the action for everyone who
may read it; the scheduler's, hosts' and conductor's events and the trace's spans for admins."""

from __future__ import annotations

import uuid

import pytest

from cloud import tracing
from cloud.compute.models import InstanceAction, InstanceActionEvent
from cloud.logcontext import log_context
from cloud.span_files import JsonLinesExporter
from tests.factories import make_server

from .conftest import signed_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def booted(member):
    vm = make_server(member, "vm1")
    request_id = f"req-{uuid.uuid4()}"
    action = InstanceAction.objects.create(instance=vm, action="create", request_id=request_id,
                                           user_id=member.user.pk, project_id=member.project.pk)
    InstanceActionEvent.objects.create(action=action, event="compute_build_and_run_instance",
                                       result="Success", host="compute-7")
    return vm, request_id


@pytest.fixture
def spans_on_disk(tmp_path, monkeypatch):
    """Spans written as KUMO_TRACE_EXPORT=file:DIR writes them, and the setting pointing there."""
    monkeypatch.setenv("KUMO_TRACE_EXPORT", f"file:{tmp_path}")
    tracing.setup("kumo-web", exporter=JsonLinesExporter(tmp_path, "kumo-web"))
    yield tmp_path
    tracing.shutdown()


def test_the_action_log_links_each_request_to_its_timeline(member, booted):
    vm, request_id = booted
    page = signed_in(member).get(f"/instances/{vm.uuid}/actions/").content.decode()
    assert f'href="/instances/{vm.uuid}/actions/{request_id}/"' in page


def test_a_member_sees_the_action_but_not_the_hosts_events(member, booted):
    vm, request_id = booted
    response = signed_in(member).get(f"/instances/{vm.uuid}/actions/{request_id}/")
    page = response.content.decode()
    assert response.status_code == 200
    assert "create requested" in page and tracing.trace_id_of(request_id) in page
    assert "compute-7" not in page and "shown to administrators" in page


def test_an_admin_sees_events_and_the_traces_spans_in_time_order(admin, booted, spans_on_disk):
    vm, request_id = booted
    with log_context(request_id), tracing.server_span("POST /compute/v2.1/servers"), \
            tracing.server_span("scheduler.schedule_instance"):
        pass
    with tracing.server_span("an unrelated request"):
        pass

    page = signed_in(admin).get(f"/instances/{vm.uuid}/actions/{request_id}/").content.decode()
    assert "compute_build_and_run_instance" in page and "compute-7" in page
    assert "span POST /compute/v2.1/servers" in page
    assert page.index("span POST /compute") < page.index("span scheduler.schedule_instance")
    assert '<span class="muted">· </span>span scheduler.schedule_instance' in page  # nested
    assert "unrelated" not in page


def test_the_timeline_links_to_the_trace_viewer_when_one_is_set(admin, booted, settings):
    vm, request_id = booted
    settings.KUMO_TRACE_URL = "http://jaeger.example:16686/trace/{trace_id}"
    page = signed_in(admin).get(f"/instances/{vm.uuid}/actions/{request_id}/").content.decode()
    assert f"http://jaeger.example:16686/trace/{tracing.trace_id_of(request_id)}" in page


def test_a_request_that_did_nothing_to_the_instance_or_another_projects_is_not_found(
    member, other, booted
):
    vm, request_id = booted
    assert signed_in(member).get(f"/instances/{vm.uuid}/actions/req-nope/").status_code == 404
    assert signed_in(other).get(f"/instances/{vm.uuid}/actions/{request_id}/").status_code == 404
