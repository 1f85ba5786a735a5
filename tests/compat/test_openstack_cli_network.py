"""The real python-openstackclient against the writable Network API (issue 14): networks, subnets,
ports, security groups and rules, routers with a gateway and an interface, floating IPs, agents."""

from __future__ import annotations

from tests.compat.test_openstack_cli import osc  # noqa: F401  (the client fixture)


def test_network_resources_with_the_real_client(stack, osc):  # noqa: F811
    ext = osc("network", "create", "--external", "cli-ext", parse=True)
    assert ext["router:external"] in (True, "External")
    osc("subnet", "create", "--network", "cli-ext", "--subnet-range", "198.51.100.0/24",
        "--no-dhcp", "cli-ext-subnet")

    net = osc("network", "create", "--mtu", "1400", "cli-net", parse=True)
    assert net["mtu"] == 1400 and net["provider:network_type"] == "vxlan"
    subnet = osc("subnet", "create", "--network", "cli-net", "--subnet-range", "10.77.0.0/24",
                 "--dns-nameserver", "192.0.2.53", "--allocation-pool",
                 "start=10.77.0.10,end=10.77.0.50", "cli-subnet", parse=True)
    assert subnet["gateway_ip"] == "10.77.0.1"

    group = osc("security", "group", "create", "--description", "web", "cli-web", parse=True)
    rule = osc("security", "group", "rule", "create", "--protocol", "tcp", "--dst-port", "80:81",
               "--remote-ip", "0.0.0.0/0", "cli-web", parse=True)
    assert rule["port_range_min"] == 80 and rule["port_range_max"] == 81
    rules = osc("security", "group", "rule", "list", "cli-web", parse=True)
    assert rule["id"] in {r["ID"] for r in rules}

    port = osc("port", "create", "--network", "cli-net", "--security-group", "cli-web",
               "--fixed-ip", "subnet=cli-subnet,ip-address=10.77.0.20", "cli-port", parse=True)
    assert "10.77.0.20" in str(port["fixed_ips"])
    assert group["id"] in str(port["security_group_ids"])

    osc("router", "create", "cli-router")
    osc("router", "set", "--external-gateway", "cli-ext", "cli-router")
    osc("router", "add", "subnet", "cli-router", "cli-subnet")
    router = osc("router", "show", "cli-router", parse=True)
    assert "198.51.100." in str(router["external_gateway_info"])

    fip = osc("floating", "ip", "create", "cli-ext", parse=True)
    osc("floating", "ip", "set", "--port", "cli-port", fip["floating_ip_address"])
    shown = osc("floating", "ip", "show", fip["floating_ip_address"], parse=True)
    assert shown["status"] == "ACTIVE" and shown["fixed_ip_address"] == "10.77.0.20"

    agents = osc("network", "agent", "list", parse=True)
    assert {"Linux bridge agent", "DHCP agent", "L3 agent"} <= {a["Agent Type"] for a in agents}

    osc("security", "group", "rule", "delete", rule["id"])
    osc("floating", "ip", "unset", "--port", fip["floating_ip_address"])
    osc("floating", "ip", "delete", fip["floating_ip_address"])
    osc("router", "remove", "subnet", "cli-router", "cli-subnet")
    osc("router", "unset", "--external-gateway", "cli-router")
    osc("router", "delete", "cli-router")
    osc("port", "delete", "cli-port")
    osc("security", "group", "delete", "cli-web")
    osc("subnet", "delete", "cli-subnet")
    osc("network", "delete", "cli-net")
    osc("subnet", "delete", "cli-ext-subnet")
    osc("network", "delete", "cli-ext")
    assert "cli-net" not in {n["Name"] for n in osc("network", "list", parse=True)}
