"""The evacuate action (admins): its body by microversion (2.14, 2.29, 2.68) and Nova's checks in
Nova's order. Rebuilding elsewhere is not there yet: an evacuation that passes every check is
refused with 409 and the server stays where it is."""

from __future__ import annotations

import pytest

from cloud.compute.models import Instance
from tests.factories import host_up, make_node, make_server

pytestmark = pytest.mark.usefixtures("mv2104")
V = "/compute/v2.1"


@pytest.fixture
def server(member):
    make_node("compute-2")
    server = make_server(member, host="compute-1")
    host_up("compute-1", up=False)
    return server


def _evacuate(api, server, version, **body):
    return api.post(f"{V}/servers/{server.uuid}/action", {"evacuate": body}, version=version)


@pytest.mark.parametrize("version, body, status", [
    ("2.13", {}, 400),                                      # onSharedStorage required
    ("2.13", {"onSharedStorage": False}, 409),
    ("2.14", {"onSharedStorage": False}, 400),              # gone at 2.14
    ("2.14", {}, 409),
    ("2.28", {"host": "compute-2", "force": True}, 400),    # force from 2.29
    ("2.29", {"host": "compute-2", "force": True}, 409),
    ("2.29", {"force": True}, 400),                         # forced to no host
    ("2.68", {"host": "compute-2", "force": False}, 400),   # force gone at 2.68
    ("2.95", {"host": "compute-2"}, 409),
])
def test_the_evacuate_body_follows_the_microversion(admin, api_as, server, version, body,
                                                    status):
    answer = _evacuate(api_as(admin), server, version, **body)
    assert answer.status_code == status, answer.content


def test_an_evacuation_that_passes_every_check_is_refused_and_changes_nothing(admin, api_as,
                                                                              server):
    answer = _evacuate(api_as(admin), server, "2.95")
    assert answer.status_code == 409
    assert "not supported" in answer.json()["conflictingRequest"]["message"]
    assert Instance.objects.get(pk=server.pk).host == "compute-1"


def test_nova_s_checks_come_first(admin, api_as, server):
    api = api_as(admin)
    assert _evacuate(api, server, "2.95", host="nowhere").status_code == 404
    assert _evacuate(api, server, "2.95", host="compute-1").status_code == 400
    host_up("compute-1")
    in_use = _evacuate(api, server, "2.95")
    assert in_use.status_code == 400
    assert in_use.json()["badRequest"]["message"] == "Compute service of compute-1 is still in use."
    Instance.objects.filter(pk=server.pk).update(vm_state="paused")
    assert _evacuate(api, server, "2.95").status_code == 409


def test_members_may_not_evacuate(member, api_as, server):
    assert _evacuate(api_as(member), server, "2.95").status_code == 403
