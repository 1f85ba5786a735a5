"""The message contract: requests and events survive the trip through a dict, secrets stay out
of reprs, and contract versions that differ only in their minor part understand each other."""

from __future__ import annotations

from compute_agent import messages as msg


def test_every_action_round_trips_through_the_contract() -> None:
    for request in (
        msg.PowerRequest(request_id="r", instance_uuid="u", timeout=3),
        msg.RebootRequest(request_id="r", instance_uuid="u", reboot_type=msg.REBOOT_HARD),
        msg.ConsoleOutputRequest(request_id="r", instance_uuid="u", length=None),
        msg.SnapshotRequest(request_id="r", instance_uuid="u", image_id="i", upload_url="http://x",
                            token="t"),
    ):
        assert type(request).from_dict(request.to_dict()) == request
    event = msg.InstanceEvent(request_id="r", instance_uuid="u", host="h", event="x",
                              action="stop", output="o", image_id="i")
    assert msg.InstanceEvent.from_dict(event.to_dict()) == event
    assert "SECRET" not in repr(msg.SnapshotRequest("r", "u", "i", "http://x", token="SECRET"))
    assert "SECRET" not in repr(msg.ImageRef(id="i", token="SECRET"))


def test_older_receivers_and_senders_agree_on_domain_states() -> None:
    old = {"uuid": "u", "power_state": msg.POWER_RUNNING, "contract_version": "1.1"}
    assert msg.DomainState.from_dict(old).vnc_port == -1
    assert msg.DomainState("u", msg.POWER_RUNNING, 5900).to_dict()["vnc_port"] == 5900
