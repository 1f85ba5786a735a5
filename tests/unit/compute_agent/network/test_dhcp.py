"""What the DHCP server of a network is told (compute_agent/network/dhcp.py): the fixed leases of
the local ports, the options of each subnet, how dnsmasq runs. A real dnsmasq answering a real
client: tests/integration/test_linuxbridge_dataplane.py."""

from __future__ import annotations

from pathlib import Path

from compute_agent import messages as msg
from compute_agent.network import dhcp

SUBNET = msg.SubnetInfo(subnet_id="s1", cidr="10.0.0.0/24", gateway_ip="10.0.0.1",
                        dns_nameservers=["192.0.2.53", "2001:db8::53"])


def port(port_id: str, mac: str, ip: str, hostname: str = "") -> msg.NetworkInfo:
    return msg.NetworkInfo(network_id="5a1b2c3d-0000-4000-8000-00000000e001", network_name="n",
                           port_id=port_id, mac_address=mac, ip_address=ip, hostname=hostname,
                           network_type="vxlan", segmentation_id=9, subnets=[SUBNET],
                           dhcp_ip="10.0.0.2", mtu=1450)


def test_the_hosts_file_has_one_fixed_lease_per_port_with_a_usable_name() -> None:
    text = dhcp.hosts_file([
        port("b", "FA:16:3E:00:00:02", "10.0.0.6", "Web Server_1!"),
        port("a", "fa:16:3e:00:00:01", "10.0.0.5", "vm-a"),
        port("c", "fa:16:3e:00:00:03", "10.0.0.7", "***"),
        port("d", "fa:16:3e:00:00:04", ""),  # no address: no lease
        port("e", "fa:16:3e:00:00:05", "2001:db8::5"),  # IPv6: not served
    ])
    assert text == ("fa:16:3e:00:00:01,10.0.0.5,vm-a\n"
                    "fa:16:3e:00:00:02,10.0.0.6,web-server-1\n"
                    "fa:16:3e:00:00:03,10.0.0.7\n")


def test_options_router_dns_mtu_and_host_routes_with_the_default_route() -> None:
    routed = msg.SubnetInfo(subnet_id="s2", cidr="10.1.0.0/24", gateway_ip="10.1.0.1",
                            host_routes=[{"destination": "172.16.0.0/12", "nexthop": "10.1.0.254"}])
    isolated = msg.SubnetInfo(subnet_id="s3", cidr="10.2.0.0/24")
    no_dhcp = msg.SubnetInfo(subnet_id="s4", cidr="10.3.0.0/24", enable_dhcp=False)
    assert dhcp.opts_file([SUBNET, routed, no_dhcp, isolated], 1450).splitlines() == [
        "tag:s0,option:router,10.0.0.1",
        "tag:s0,option:dns-server,192.0.2.53",
        "tag:s1,option:router,10.1.0.1",
        "tag:s1,option:dns-server",
        "tag:s1,option:classless-static-route,172.16.0.0/12,10.1.0.254,0.0.0.0/0,10.1.0.1",
        # No gateway: no router option at all (dnsmasq would offer itself).
        "tag:s2,option:router",
        "tag:s2,option:dns-server",
        "option:mtu,1450",
    ]


def test_the_metadata_route_goes_through_the_dhcp_server_of_its_subnet() -> None:
    """169.254.169.254/32 via the server's own address (option 121, with the default route
    then, since 121 replaces the router option), for the subnet the server is on only."""
    other = msg.SubnetInfo(subnet_id="s2", cidr="10.1.0.0/24", gateway_ip="10.1.0.1")
    lines = dhcp.opts_file([SUBNET, other], 1450, "10.0.0.2").splitlines()
    assert "tag:s0,option:classless-static-route,169.254.169.254/32,10.0.0.2,0.0.0.0/0,10.0.0.1" \
        in lines
    assert not any(line.startswith("tag:s1,option:classless") for line in lines)
    isolated = msg.SubnetInfo(subnet_id="s3", cidr="10.0.0.0/24")  # no gateway: no default
    assert "tag:s0,option:classless-static-route,169.254.169.254/32,10.0.0.2" in \
        dhcp.opts_file([isolated], 1450, "10.0.0.2").splitlines()


def test_dnsmasq_serves_static_leases_only_without_dns_on_its_own_leg(tmp_path: Path) -> None:
    argv = dhcp.dnsmasq_argv(port("a", "fa:16:3e:00:00:01", "10.0.0.5"), tmp_path)
    assert argv[0] == "dnsmasq"
    assert "--port=0" in argv and "--no-resolv" in argv and "--keep-in-foreground" in argv
    assert "--interface=ns-5a1b2c3d-00" in argv
    assert "--dhcp-range=set:s0,10.0.0.0,static,255.255.255.0,3600s" in argv
    assert f"--dhcp-hostsfile={tmp_path / 'hosts'}" in argv
    assert dhcp.server_address(port("a", "fa:16:3e:00:00:01", "10.0.0.5")) == "10.0.0.2/24"
    assert (dhcp.host_leg("5a1b2c3d-0000-4000"), dhcp.server_leg("5a1b2c3d-0000-4000")) == (
        "dhcp5a1b2c3d-00", "ns-5a1b2c3d-00")
