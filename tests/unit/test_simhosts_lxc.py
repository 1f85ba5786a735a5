"""Container hosts among the simulated hosts: named lxc-N, opened as lxc://, numbered on."""

from __future__ import annotations

from simhosts.hosts import SimHost, hosts_of


def test_a_container_host_is_opened_with_the_lxc_driver_and_a_qemu_host_is_not():
    ct, vm = SimHost("t", "lxc-1", 4), hosts_of("t", 3)[0]
    assert ct.is_container_host and not vm.is_container_host
    assert ct.uri == f"lxc:///system?socket={ct.socket}"
    assert vm.uri == f"qemu:///system?socket={vm.socket}"
    assert ct.ip != vm.ip
