"""POST and DELETE /servers/{id}/os-interface: a port bound and plugged in by the host, or unplugged
and released once the host says it is out; Nova's 409 in a state that forbids it; who may."""

from __future__ import annotations

import pytest

from cloud.conductor.instance_events import apply_instance_event
from cloud.network.models import Port
from compute_agent import messages as msg
from tests.factories import V, give_address, make_server


@pytest.fixture
def server(member, db):
    return make_server(member)


def _attach(api, server, body, version="2.60"):
    return api.post(f"{V}/servers/{server.uuid}/os-interface", body, version=version)


def _report(server, event, **fields):
    apply_instance_event(msg.InstanceEvent(
        request_id="req-test", instance_uuid=str(server.uuid), host=server.host, event=event,
        **fields))
    server.refresh_from_db()


def test_attach_makes_a_port_on_the_network_and_asks_the_host_to_plug_it_in(
    member, api_as, server, nets, sent
):
    give_address(server)
    api = api_as(member)
    response = _attach(api, server, {"interfaceAttachment": {
        "net_id": str(nets["alpha"].id), "fixed_ips": [{"ip_address": "10.2.0.50"}]}})
    assert response.status_code == 200, response.content
    body = response.json()["interfaceAttachment"]
    port = Port.objects.get(pk=body["port_id"])
    assert (port.device_id, body["net_id"]) == (str(server.uuid), str(nets["alpha"].id))
    assert body["fixed_ips"][0]["ip_address"] == "10.2.0.50"
    server.refresh_from_db()
    assert server.task_state == "interface_attaching"
    ((name, (payload,), queue),) = sent
    assert (name, queue, payload["port_id"]) == (msg.TASK_ATTACH_INTERFACE, "compute.compute1",
                                                 str(port.id))
    assert {nic["mac_address"] for nic in payload["networks"]} == set(
        Port.objects.filter(device_id=str(server.uuid)).values_list("mac_address", flat=True))
    assert body["port_state"] == "DOWN"
    _report(server, msg.EVENT_INTERFACE_ATTACHED, port_id=str(port.id), power_state="running")
    assert (server.vm_state, server.task_state) == ("active", None)
    shown = api.get(f"{V}/servers/{server.uuid}/os-interface/{port.id}").json()
    assert shown["interfaceAttachment"]["port_state"] == "ACTIVE"  # plugged into the guest
    listed = api.get(f"{V}/servers/{server.uuid}/os-interface").json()["interfaceAttachments"]
    assert str(port.id) in {entry["port_id"] for entry in listed}


def test_attach_of_an_unbound_port_binds_it_and_a_bound_one_is_409(
    member, api_as, server, nets, sent
):
    free = Port.objects.create(network=nets["alpha"], project=member.project,
                               mac_address="fa:16:3e:00:00:99")
    api = api_as(member)
    response = _attach(api, server, {"interfaceAttachment": {"port_id": str(free.id)}})
    assert response.status_code == 200
    free.refresh_from_db()
    assert free.device_id == str(server.uuid)
    _report(server, msg.EVENT_INTERFACE_ATTACHED, port_id=str(free.id), power_state="running")
    other_server = make_server(member, name="vm2")
    assert _attach(api, other_server, {"interfaceAttachment": {"port_id": str(free.id)}}
                   ).status_code == 409


def test_attach_to_a_network_the_caller_cannot_see_is_404_and_leaves_nothing(
    member, api_as, server, nets, sent
):
    response = _attach(api_as(member), server, {"interfaceAttachment": {
        "net_id": str(nets["beta"].id)}})
    assert response.status_code == 404
    server.refresh_from_db()
    assert server.task_state is None and sent == []
    assert not Port.objects.filter(device_id=str(server.uuid)).exists()


def test_detach_asks_the_host_and_the_port_goes_once_it_is_out(member, api_as, server, sent):
    port = give_address(server)
    api = api_as(member)
    response = api.delete(f"{V}/servers/{server.uuid}/os-interface/{port.id}")
    assert response.status_code == 202
    server.refresh_from_db()
    assert server.task_state == "interface_detaching"
    ((name, (payload,), _),) = sent
    assert (name, payload["port_id"], payload["networks"]) == (
        msg.TASK_DETACH_INTERFACE, str(port.id), [])
    assert Port.objects.filter(pk=port.pk).exists()  # until the host has unplugged it
    _report(server, msg.EVENT_INTERFACE_DETACHED, port_id=str(port.id), power_state="running")
    assert not Port.objects.filter(pk=port.pk).exists()
    assert server.task_state is None


def test_detach_of_a_port_the_server_does_not_have_is_404(member, api_as, server, nets, sent):
    stray = Port.objects.create(network=nets["alpha"], project=member.project,
                                mac_address="fa:16:3e:00:00:98")
    response = api_as(member).delete(f"{V}/servers/{server.uuid}/os-interface/{stray.id}")
    assert response.status_code == 404 and sent == []


@pytest.mark.parametrize("vm_state", ["suspended", "building", "shelved_offloaded"])
def test_a_state_that_forbids_it_is_409(member, api_as, nets, sent, vm_state):
    server = make_server(member, vm_state=vm_state)
    port = give_address(server)
    api = api_as(member)
    attach = _attach(api, server, {"interfaceAttachment": {"net_id": str(nets["alpha"].id)}})
    assert attach.status_code == 409
    assert api.delete(f"{V}/servers/{server.uuid}/os-interface/{port.id}").status_code == 409
    assert list(Port.objects.filter(device_id=str(server.uuid))) == [port] and sent == []


def test_readers_may_not_and_bad_bodies_are_400(member, reader, api_as, server, nets, sent):
    body = {"interfaceAttachment": {"net_id": str(nets["alpha"].id)}}
    assert _attach(api_as(reader), server, body).status_code == 403
    for bad in ({"interfaceAttachment": {"net_id": "x"}},
                {"interfaceAttachment": {"port_id": str(nets["alpha"].id),
                                         "net_id": str(nets["alpha"].id)}},
                {"interfaceAttachment": {"fixed_ips": [{"ip_address": "10.2.0.9"}]}},
                {"interfaceAttachment": {"net_id": str(nets["alpha"].id), "bogus": 1}}):
        assert _attach(api_as(member), server, bad).status_code == 400, bad
    assert sent == []


def test_a_port_the_host_could_not_plug_in_is_left_unbound(member, api_as, server, nets, sent):
    response = _attach(api_as(member), server, {"interfaceAttachment": {
        "net_id": str(nets["alpha"].id)}})
    port_id = response.json()["interfaceAttachment"]["port_id"]
    _report(server, msg.EVENT_ACTION_FAILED, action=msg.ACTION_ATTACH_INTERFACE,
            message="no hot-plug", port_id=port_id, power_state="running")
    assert (server.vm_state, server.task_state) == ("active", None)
    assert Port.objects.get(pk=port_id).device_id == ""
    assert server.faults.first().message == "no hot-plug"
