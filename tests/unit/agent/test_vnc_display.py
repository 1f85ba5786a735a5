"""The agent's side of consoles: guests' VNC never listens on every interface, and the host report
carries each running domain's VNC port (contract 1.2)."""

from __future__ import annotations

import pytest

from compute_agent import messages as msg
from compute_agent.domain_xml import build_domain_xml
from compute_agent.drivers.libvirt.host import _vnc_port
from compute_agent.worker import parse_args

from .test_domain_xml import request


@pytest.mark.parametrize("address", ["0.0.0.0", "::"])
def test_a_guest_display_on_every_interface_is_refused(address: str) -> None:
    with pytest.raises(ValueError, match="every interface"):
        build_domain_xml(request(), domain_type="qemu", vnc_listen=address)


@pytest.mark.parametrize("address", ["0.0.0.0", "::"])
def test_the_agent_will_not_start_with_vnc_on_every_interface(address: str) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--host", "h1", "--vnc-listen", address], environ={})


def test_the_test_driver_reports_no_vnc_port(driver, spawn_request) -> None:
    spawned = spawn_request()
    driver.spawn(spawned)
    [state] = [d for d in driver.list_domains() if d.uuid == spawned.instance_uuid]
    assert state.vnc_port == -1  # libvirt's test driver has no VNC server


class _Domain:
    def __init__(self, xml: str, active: bool = True) -> None:
        self._xml, self._active = xml, active

    def isActive(self) -> bool:
        return self._active

    def XMLDesc(self, flags: int) -> str:
        return self._xml


LIVE = ("<domain><devices><graphics type='vnc' port='{port}' autoport='yes' listen='127.0.0.1'/>"
        "</devices></domain>")


@pytest.mark.parametrize(("xml", "active", "port"), [
    (LIVE.format(port=5903), True, 5903),
    (LIVE.format(port=-1), True, -1),
    (LIVE.format(port=5903), False, -1),
    ("<domain><devices/></domain>", True, -1),
    (LIVE.format(port="x"), True, -1),
])
def test_the_vnc_port_is_read_from_the_live_domain(xml: str, active: bool, port: int) -> None:
    assert _vnc_port(_Domain(xml, active)) == port


def test_older_receivers_and_senders_agree_on_domain_states() -> None:
    old = {"uuid": "u", "power_state": msg.POWER_RUNNING, "contract_version": "1.1"}
    assert msg.DomainState.from_dict(old).vnc_port == -1
    assert msg.DomainState("u", msg.POWER_RUNNING, 5900).to_dict()["vnc_port"] == 5900
