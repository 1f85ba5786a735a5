"""What the hosts' data planes are told (cloud/compute/network_plane.py): a port as its host must
plug it, security rules with remote groups expanded to addresses, who hears of a change, and a
router as its host must build it. Messages are the ones really published after commit (`sent`)."""

from __future__ import annotations

import pytest
from django.db import transaction

from cloud.compute import network_plane
from cloud.compute.spawn import build_spawn_request
from cloud.network import dataplane
from cloud.network.models import (
    FloatingIp,
    Network,
    Port,
    Router,
    SecurityGroup,
    SecurityGroupRule,
    Subnet,
)
from compute_agent import messages as msg
from tests.factories import make_instance, make_node

pytestmark = pytest.mark.django_db


def _dataplane_host(host: str, ip: str) -> None:
    node = make_node(host)
    node.network_driver, node.host_ip = "linuxbridge", ip
    node.save()


@pytest.fixture
def net():
    network = Network.objects.create(name="net1", segmentation_id=1001, mtu=1450)
    Subnet.objects.create(network=network, cidr="192.168.5.0/24", gateway_ip="192.168.5.1",
                          dns_nameservers=["192.0.2.53"])
    return network


def _port(network: Network, instance, address: str, *groups: SecurityGroup, **kw) -> Port:
    port = Port.objects.create(
        network=network, device_id=str(instance.uuid), device_owner="compute:nova",
        mac_address=f"fa:16:3e:00:01:{Port.objects.count():02x}",
        fixed_ips=[{"subnet_id": str(network.subnets.first().id), "ip_address": address}], **kw)
    port.security_groups.set(groups)
    return port


def test_a_host_without_a_data_plane_is_told_user_mode_nics_only(net) -> None:
    make_node("compute-1")  # network_driver "": an agent with the user-mode driver
    vm = make_instance("vm", host="compute-1")
    _port(net, vm, "192.168.5.10")
    (nic,) = build_spawn_request(vm, "req-1").networks
    assert (nic.network_type, nic.rules, nic.dhcp_ip, nic.peers) == ("user", [], "", [])
    assert Port.objects.filter(device_owner="network:dhcp").count() == 0


def test_a_port_on_a_data_plane_host_carries_what_plugging_it_needs(net) -> None:
    _dataplane_host("compute-1", "10.77.0.11")
    _dataplane_host("compute-2", "10.77.0.12")
    group = SecurityGroup.objects.create(name="web")
    SecurityGroupRule.objects.create(security_group=group, direction="ingress", protocol="tcp",
                                     port_range_min=22, port_range_max=22,
                                     remote_ip_prefix="0.0.0.0/0")
    SecurityGroupRule.objects.create(security_group=group, direction="ingress",
                                     remote_group=group)
    vm = make_instance("vm", host="compute-1", hostname="vm")
    other = make_instance("other", host="compute-2")
    _port(net, vm, "192.168.5.10", group)
    _port(net, other, "192.168.5.11", group,
          allowed_address_pairs=[{"ip_address": "192.168.5.98"}])

    (nic,) = build_spawn_request(vm, "req-1", "compute-1").networks
    assert (nic.network_type, nic.segmentation_id, nic.mtu, nic.hostname) == \
        ("vxlan", 1001, 1450, "vm")
    assert nic.peers == ["10.77.0.12"]
    assert nic.subnets[0].dns_nameservers == ["192.0.2.53"]
    ssh, members = nic.rules
    assert (ssh.protocol, ssh.port_min, ssh.port_max, ssh.remote) == \
        ("tcp", 22, 22, ["0.0.0.0/0"])
    # A remote group arrives as its members' addresses, allowed address pairs included.
    assert members.remote == ["192.168.5.10/32", "192.168.5.11/32", "192.168.5.98/32"]
    # The host's DHCP server on the network got a port of its own from IPAM, once.
    dhcp = Port.objects.get(device_owner="network:dhcp", device_id="dhcp-compute-1")
    assert (nic.dhcp_ip, nic.dhcp_mac) == (dhcp.fixed_ips[0]["ip_address"], dhcp.mac_address)
    build_spawn_request(vm, "req-2", "compute-1")
    assert Port.objects.filter(device_owner="network:dhcp").count() == 1


def test_a_rule_change_reaches_every_host_carrying_a_member_after_commit(net, sent) -> None:
    _dataplane_host("compute-1", "10.77.0.11")
    _dataplane_host("compute-2", "10.77.0.12")
    _dataplane_host("compute-3", "10.77.0.13")
    web, db_group = SecurityGroup.objects.create(name="web"), SecurityGroup.objects.create(name="db")
    # db admits web's members: a change of web's membership changes db's rules too.
    SecurityGroupRule.objects.create(security_group=db_group, direction="ingress",
                                     remote_group=web)
    a = _port(net, make_instance("a", host="compute-1"), "192.168.5.10", web)
    b = _port(net, make_instance("b", host="compute-2"), "192.168.5.11", db_group)
    _port(net, make_instance("c", host="compute-3"), "192.168.5.12")  # in neither group

    with transaction.atomic():
        dataplane.notify_groups([str(web.id)])
        assert sent == []  # nothing leaves before the change commits
    refreshes = {s.queue: msg.PortsRefresh.from_dict(s.args[0]) for s in sent
                 if s.name == msg.TASK_REFRESH_PORTS}
    assert sorted(refreshes) == ["compute.compute-1", "compute.compute-2"]
    assert [p.port_id for p in refreshes["compute.compute-1"].ports] == [str(a.id)]
    (db_port,) = refreshes["compute.compute-2"].ports
    assert db_port.port_id == str(b.id) and db_port.rules[0].remote == ["192.168.5.10/32"]


def test_a_rolled_back_change_sends_nothing(net, sent) -> None:
    _dataplane_host("compute-1", "10.77.0.11")
    port = _port(net, make_instance("a", host="compute-1"), "192.168.5.10")
    with pytest.raises(RuntimeError), transaction.atomic():
        dataplane.notify_ports([str(port.id)])
        raise RuntimeError("the change failed")
    assert sent == []


def test_a_router_gets_a_host_and_its_spec_lists_legs_and_floating_ips(net, sent) -> None:
    _dataplane_host("compute-1", "10.77.0.11")
    _dataplane_host("compute-2", "10.77.0.12")
    Router.objects.create(name="busy", host="compute-1")
    public = Network.objects.create(name="public", external=True, network_type="flat",
                                    physical_network="public", mtu=1500)
    Subnet.objects.create(network=public, cidr="172.24.4.0/24", gateway_ip="172.24.4.1",
                          enable_dhcp=False)
    router = Router.objects.create(name="r1", external_network=public)
    Port.objects.create(network=public, device_id=str(router.id),
                        device_owner="network:router_gateway", mac_address="fa:16:3e:aa:00:01",
                        fixed_ips=[{"ip_address": "172.24.4.10"}])
    Port.objects.create(network=net, device_id=str(router.id),
                        device_owner="network:router_interface", mac_address="fa:16:3e:aa:00:02",
                        fixed_ips=[{"ip_address": "192.168.5.1"}])
    vm_port = _port(net, make_instance("a", host="compute-1"), "192.168.5.10")
    fip_port = Port.objects.create(network=public, device_owner="network:floatingip",
                                   mac_address="fa:16:3e:aa:00:03",
                                   fixed_ips=[{"ip_address": "172.24.4.20"}])
    FloatingIp.objects.create(floating_network=public, floating_port=fip_port,
                              floating_ip_address="172.24.4.20", port=vm_port,
                              fixed_ip_address="192.168.5.10", router=router)

    with transaction.atomic():
        dataplane.notify_router(str(router.id))
    (message,) = [s for s in sent if s.name == msg.TASK_SYNC_ROUTER]
    spec = msg.RouterSpec.from_dict(message.args[0])
    # The host running fewer routers runs it, and the router's ports are bound there.
    assert message.queue == "compute.compute-2"
    assert Router.objects.get(pk=router.pk).host == "compute-2"
    assert spec.gateway is not None and spec.gateway.network_type == "flat"
    assert (spec.gateway.physical_network, spec.gateway.ip_address) == ("public", "172.24.4.10")
    assert [leg.ip_address for leg in spec.interfaces] == ["192.168.5.1"]
    assert all(not leg.rules and not leg.port_security for leg in spec.interfaces)
    assert [(f.floating_ip, f.fixed_ip) for f in spec.floating_ips] == \
        [("172.24.4.20", "192.168.5.10")]


def test_a_new_tunnel_end_is_announced_to_the_hosts_already_carrying_ports(net, sent) -> None:
    _dataplane_host("compute-1", "10.77.0.11")
    _port(net, make_instance("a", host="compute-1"), "192.168.5.10")
    _dataplane_host("compute-2", "10.77.0.12")
    with transaction.atomic():
        network_plane.host_joined("compute-2")
    (refresh,) = [msg.PortsRefresh.from_dict(s.args[0]) for s in sent
                  if s.queue == "compute.compute-1"]
    assert refresh.ports[0].peers == ["10.77.0.12"]


def test_a_router_made_before_any_data_plane_host_is_placed_when_one_joins(net, sent) -> None:
    router = Router.objects.create(name="router1")
    with transaction.atomic():
        dataplane.notify_router(str(router.id))  # bootstrap, before any agent reported
    assert Router.objects.get(pk=router.pk).host == "" and sent == []
    _dataplane_host("compute-1", "10.77.0.11")
    with transaction.atomic():
        network_plane.host_joined("compute-1")
    assert Router.objects.get(pk=router.pk).host == "compute-1"
    assert [s.queue for s in sent if s.name == msg.TASK_SYNC_ROUTER] == ["compute.compute-1"]
