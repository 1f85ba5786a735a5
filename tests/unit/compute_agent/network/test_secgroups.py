"""Security rules as iptables and ebtables text (compute_agent/network/secgroups.py): each shape
of SecurityRule, the chains of a port, anti-spoofing and what port_security=False leaves out.
The rules at work on real packets: tests/integration/test_linuxbridge_dataplane.py."""

from __future__ import annotations

import pytest

from compute_agent import messages as msg
from compute_agent.network import secgroups
from compute_agent.network.base import NetworkError

CHAIN = "kumo-i-test"


def lines(**fields: object) -> list[str]:
    return secgroups.rule_lines(CHAIN, msg.SecurityRule(**fields))  # type: ignore[arg-type]


@pytest.mark.parametrize(("fields", "expected"), [
    ({"direction": "ingress"}, ["-A kumo-i-test -j RETURN"]),
    ({"direction": "ingress", "protocol": "tcp", "port_min": 22, "port_max": 22},
     ["-A kumo-i-test -p tcp -m tcp --dport 22 -j RETURN"]),
    ({"direction": "ingress", "protocol": "udp", "port_min": 1000, "port_max": 2000},
     ["-A kumo-i-test -p udp -m udp --dport 1000:2000 -j RETURN"]),
    ({"direction": "ingress", "protocol": "6", "port_min": 80, "port_max": 80},
     ["-A kumo-i-test -p tcp -m tcp --dport 80 -j RETURN"]),
    ({"direction": "ingress", "protocol": "tcp"}, ["-A kumo-i-test -p tcp -j RETURN"]),
    ({"direction": "ingress", "protocol": "icmp"}, ["-A kumo-i-test -p icmp -j RETURN"]),
    ({"direction": "ingress", "protocol": "icmp", "port_min": 8},
     ["-A kumo-i-test -p icmp -m icmp --icmp-type 8 -j RETURN"]),
    ({"direction": "ingress", "protocol": "icmp", "port_min": 3, "port_max": 4},
     ["-A kumo-i-test -p icmp -m icmp --icmp-type 3/4 -j RETURN"]),
    ({"direction": "ingress", "protocol": "gre"}, ["-A kumo-i-test -p gre -j RETURN"]),
    ({"direction": "ingress", "protocol": "tcp", "port_min": 22, "port_max": 22,
      "remote": ["10.0.0.0/24", "192.0.2.7"]},
     ["-A kumo-i-test -s 10.0.0.0/24 -p tcp -m tcp --dport 22 -j RETURN",
      "-A kumo-i-test -s 192.0.2.7/32 -p tcp -m tcp --dport 22 -j RETURN"]),
    ({"direction": "egress", "remote": ["198.51.100.0/24"]},
     ["-A kumo-i-test -d 198.51.100.0/24 -j RETURN"]),
    ({"direction": "ingress", "remote": ["0.0.0.0/0"]}, ["-A kumo-i-test -j RETURN"]),
])
def test_each_rule_shape_becomes_its_lines(fields: dict[str, object], expected: list[str]) -> None:
    assert lines(**fields) == expected


def test_an_empty_remote_list_allows_nobody_and_ipv6_gives_no_ipv4_line() -> None:
    assert lines(direction="ingress", protocol="tcp", remote=[]) == []
    assert lines(direction="ingress", ethertype="IPv6") == []
    assert lines(direction="ingress", remote=["2001:db8::/64"]) == []


@pytest.mark.parametrize("fields", [
    {"direction": "ingress", "protocol": "tcp; -j ACCEPT"},
    {"direction": "ingress", "protocol": "tcp", "port_min": 70000},
    {"direction": "ingress", "protocol": "tcp", "port_min": 30, "port_max": 20},
    {"direction": "ingress", "remote": ["10.0.0.0/24 -j ACCEPT"]},
])
def test_what_is_no_rule_is_refused_rather_than_written(fields: dict[str, object]) -> None:
    with pytest.raises(NetworkError):
        lines(**fields)


def port(**overrides: object) -> msg.NetworkInfo:
    fields: dict[str, object] = {
        "network_id": "net-1", "network_name": "n", "port_id": "p1234567890abc",
        "mac_address": "FA:16:3E:00:00:01", "ip_address": "10.0.0.5", "network_type": "vxlan",
        "segmentation_id": 7, "dhcp_ip": "10.0.0.2",
        "rules": [msg.SecurityRule(direction="ingress", protocol="icmp"),
                  msg.SecurityRule(direction="egress")],
    }
    fields.update(overrides)
    return msg.NetworkInfo(**fields)  # type: ignore[arg-type]


def test_a_port_has_stateful_chains_that_end_in_drop_and_an_anti_spoofing_chain() -> None:
    chains = secgroups.port_chains(port(allowed_address_pairs=[
        {"ip_address": "10.0.0.100/32", "mac_address": "fa:16:3e:00:00:99"},
        {"ip_address": "10.0.9.0/24"}]))
    ingress, egress, spoof = (chains["kumo-i-p1234567890"], chains["kumo-o-p1234567890"],
                              chains["kumo-s-p1234567890"])
    assert ingress[0] == "-A kumo-i-p1234567890 -m conntrack --ctstate RELATED,ESTABLISHED " \
                         "-j RETURN"
    assert "-A kumo-i-p1234567890 -m conntrack --ctstate INVALID -j DROP" in ingress
    assert "-A kumo-i-p1234567890 -s 10.0.0.2/32 -p udp -m udp --sport 67 --dport 68 " \
           "-j RETURN" in ingress
    assert ingress[-2:] == ["-A kumo-i-p1234567890 -p icmp -j RETURN",
                            "-A kumo-i-p1234567890 -j DROP"]
    # DHCP out before the spoofing check (no address yet), every other packet after it.
    assert egress.index("-A kumo-o-p1234567890 -j kumo-s-p1234567890") == 1
    assert egress[-2:] == ["-A kumo-o-p1234567890 -j RETURN", "-A kumo-o-p1234567890 -j DROP"]
    assert spoof == [
        "-A kumo-s-p1234567890 -s 10.0.0.5/32 -m mac --mac-source fa:16:3e:00:00:01 -j RETURN",
        "-A kumo-s-p1234567890 -s 10.0.0.100/32 -m mac --mac-source fa:16:3e:00:00:99 -j RETURN",
        "-A kumo-s-p1234567890 -s 10.0.9.0/24 -m mac --mac-source fa:16:3e:00:00:01 -j RETURN",
        "-A kumo-s-p1234567890 -j DROP",
    ]


def test_the_filter_text_jumps_for_every_secured_port_before_accepting_any() -> None:
    secured, open_port = port(), port(port_id="q0000000000000", port_security=False)
    text = secgroups.filter_table([secured, open_port], stale_chains=["kumo-i-gone0000000"])
    body = text.splitlines()
    assert body[0] == ":kumo-fwd -"
    forward = [line for line in body if line.startswith("-A kumo-fwd")]
    assert forward[:2] == secgroups.unnamed_nic_drops()
    forward = forward[2:]
    assert forward[:2] == [
        ("-A kumo-fwd -m physdev --physdev-out tapp1234567890 --physdev-is-bridged "
        "-j kumo-i-p1234567890"),
        ("-A kumo-fwd -m physdev --physdev-in tapp1234567890 --physdev-is-bridged "
        "-j kumo-o-p1234567890"),
    ]
    assert all(line.endswith("-j ACCEPT") for line in forward[2:]) and len(forward) == 6
    assert not any("kumo-i-q000" in line for line in body)  # no filtering without security
    assert body[-2:] == ["-F kumo-i-gone0000000", "-X kumo-i-gone0000000"]


def test_ebtables_allow_only_the_ports_own_arp_and_macs_and_drop_ipv6() -> None:
    text = secgroups.ebtables_table([port(), port(port_id="q0000000000000",
                                                  port_security=False)])
    assert "-A kumo-fwd -i tapp1234567890 -j kumo-a-p1234567890" in text
    assert "-A kumo-fwd -o tapp1234567890 -p IPv6 -j DROP" in text
    assert ("-A kumo-a-p1234567890 -p ARP -s fa:16:3e:00:00:01 --arp-mac-src fa:16:3e:00:00:01 "
            "--arp-ip-src 10.0.0.5/32 -j RETURN") in text
    assert text.index("-p ARP -j DROP") < text.index("-s fa:16:3e:00:00:01 -j RETURN")
    assert "tapq0000000000" not in text


def test_a_veth_libvirt_named_vnetN_in_a_kumo_bridge_is_dropped_first_in_both_tables() -> None:
    """Fail closed: a container's NIC not yet renamed as its port's tap matches no port's rules,
    so everything it sends or is sent is dropped, before any port's jump or accept (iptables:
    in Kumo's bridges, brq...; ebtables cannot tell the bridge)."""
    for text in (secgroups.filter_table([port()]), secgroups.ebtables_table([port()]),
                 secgroups.filter_table([]), secgroups.ebtables_table([])):
        forward = [line for line in text.splitlines() if line.startswith("-A kumo-fwd")]
        drops = [line for line in forward if "vnet+" in line]
        assert len(drops) == 2 and forward[:2] == drops, forward
        assert all(line.endswith("-j DROP") for line in drops)
    assert secgroups.unnamed_nic_drops() == [
        "-A kumo-fwd -i brq+ -m physdev --physdev-in vnet+ --physdev-is-bridged -j DROP",
        "-A kumo-fwd -o brq+ -m physdev --physdev-out vnet+ --physdev-is-bridged -j DROP"]
    ebtables = secgroups.ebtables_table([])
    assert "-A kumo-fwd -i vnet+ -j DROP\n-A kumo-fwd -o vnet+ -j DROP\n" in ebtables


def test_zones_and_the_chains_a_save_listing_names() -> None:
    assert secgroups.raw_table({"net-b": 2, "net-a": 1}).splitlines() == [
        ":kumo-zone -", "-A kumo-zone -i brqnet-a -j CT --zone 1",
        "-A kumo-zone -i brqnet-b -j CT --zone 2"]
    saved = "*filter\n:FORWARD ACCEPT [0:0]\n:kumo-fwd - [0:0]\n:kumo-i-x - [0:0]\nCOMMIT\n"
    assert secgroups.kumo_chains(saved) == ["kumo-fwd", "kumo-i-x"]
