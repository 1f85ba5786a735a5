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


def test_a_host_report_is_the_same_dict_as_the_generic_one_and_reads_back() -> None:
    # HostReport builds its dict field by field (a heartbeat lists every domain): it must stay the
    # dict dataclasses.asdict gives, and not share its lists or dicts with the report.
    report = msg.HostReport(
        host="h", hypervisor_type="QEMU", hypervisor_version=1, hypervisor_hostname="h",
        host_ip="192.0.2.1", vcpus=2, memory_mb=1, local_gb=1, cpu_info={"topology": {"cores": 2}},
        domains=[msg.DomainState(f"u{n}", msg.POWER_RUNNING, 5900 + n) for n in range(3)],
        load_average=[0.5, 0.25, 0.0])
    data = report.to_dict()
    assert data == msg.Message.to_dict(report)
    data["cpu_info"]["topology"]["cores"] = 9
    data["load_average"].append(1.0)
    data["domains"][0]["vnc_port"] = 1
    assert report.cpu_info == {"topology": {"cores": 2}} and len(report.load_average) == 3
    assert report.domains[0].vnc_port == 5900
    assert msg.HostReport.from_dict(report.to_dict()) == report
