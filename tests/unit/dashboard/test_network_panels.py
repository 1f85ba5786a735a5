"""The networking panels (issue 14): networks and subnets, routers, security groups and their
rules, floating IPs, the topology picture, and the launch dialog's networks, port and groups —
clicked through the Django test client as the shared personas, checked by what the pages show and
by what the Network API's rows hold afterwards."""

from __future__ import annotations

import re

import pytest

from cloud.compute.models import Instance
from cloud.identity.context import RequestContext
from cloud.network import ipam
from cloud.network import ports as port_services
from cloud.network.models import FloatingIp, Network, Port, Router, SecurityGroup, Subnet
from tests.factories import make_server

from .conftest import signed_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def public(db) -> Network:
    """The external network bootstrap makes (flat on physnet public)."""
    net = Network.objects.create(name="public", external=True, network_type="flat",
                                 physical_network="public", mtu=1500)
    Subnet.objects.create(network=net, cidr="172.24.4.0/24", gateway_ip="172.24.4.1",
                          allocation_pools=[{"start": "172.24.4.10", "end": "172.24.4.250"}])
    return net


def _page(response) -> str:
    return response.content.decode()


def _create_network(client, name="net1", cidr="10.1.0.0/24", **extra) -> Network:
    response = client.post("/networks/create", {
        "name": name, "admin_state_up": "on", "with_subnet": "on", "cidr": cidr,
        "enable_dhcp": "on", **extra})
    assert response.status_code == 302, _page(response)
    network = Network.objects.get(name=name)
    assert response["Location"] == f"/networks/{network.id}/"
    return network


def _ctx(persona) -> RequestContext:
    return RequestContext(user_id=persona.user.pk, user_name=persona.user.name,
                          project_id=persona.project.pk, project_name=persona.project.name,
                          roles=("member", "reader"))


# --- networks and subnets


def test_a_network_is_created_with_its_first_subnet_listed_and_deleted(member):
    client = signed_in(member)
    network = _create_network(client, dns_nameservers="8.8.8.8\n1.1.1.1")
    subnet = network.subnets.get()
    assert (subnet.cidr, subnet.gateway_ip, subnet.enable_dhcp) == ("10.1.0.0/24", "10.1.0.1", True)
    assert subnet.dns_nameservers == ["8.8.8.8", "1.1.1.1"]
    listing = _page(client.get("/networks/"))
    row = listing[listing.index(f'data-network="{network.id}"'):]
    row = row[:row.index("</tr>")]
    assert "net1" in row and "10.1.0.0/24" in row and "ACTIVE" in row
    assert "Network net1 created." in listing
    detail = _page(client.get(f"/networks/{network.id}/"))
    assert "10.1.0.1" in detail and "8.8.8.8, 1.1.1.1" in detail
    confirm = client.get(f"/networks/{network.id}/delete")
    assert confirm.status_code == 200 and "Delete network net1?" in _page(confirm)
    gone = client.post(f"/networks/{network.id}/delete", follow=True)
    assert "Network net1 deleted." in _page(gone)
    assert not Network.objects.filter(pk=network.pk).exists()
    assert not Subnet.objects.exists()


def test_subnets_are_added_and_deleted_on_the_network_page(member):
    client = signed_in(member)
    response = client.post("/networks/create", {"name": "bare", "admin_state_up": "on"})
    network = Network.objects.get(name="bare")
    assert response.status_code == 302 and not network.subnets.exists()
    added = client.post(f"/networks/{network.id}/subnets/create", {
        "subnet_name": "second", "cidr": "10.9.0.0/24", "no_gateway": "on"}, follow=True)
    subnet = network.subnets.get()
    assert (subnet.name, subnet.gateway_ip, subnet.enable_dhcp) == ("second", None, False)
    assert "Subnet second created." in _page(added)
    overlapping = client.post(f"/networks/{network.id}/subnets/create", {"cidr": "10.9.0.128/25"})
    assert overlapping.status_code == 400 and "overlaps with another subnet" in _page(overlapping)
    client.post(f"/subnets/{subnet.id}/delete")
    assert not network.subnets.exists()


def test_a_network_in_use_is_not_deleted_and_the_reason_is_shown(member):
    client = signed_in(member)
    network = _create_network(client)
    server = make_server(member, "vm1")
    ipam.allocate_port(network, member.project.pk, str(server.uuid))
    response = client.post(f"/networks/{network.id}/delete", follow=True)
    page = _page(response)
    assert response.status_code == 200
    assert "There are one or more ports still in use on the network" in page
    assert Network.objects.filter(pk=network.pk).exists()
    # The port shows on the network page, linked to its instance
    assert f"/instances/{server.uuid}/" in _page(client.get(f"/networks/{network.id}/"))
    in_use = client.post(f"/subnets/{network.subnets.get().id}/delete", follow=True)
    assert "One or more ports have an IP allocation from this subnet" in _page(in_use)


@pytest.mark.parametrize("fields, shown", [
    ({"cidr": "banana"}, "Invalid input for cidr"),
    ({"cidr": "10.0.0.0/24", "gateway_ip": "192.168.0.1"}, "gateway"),
    ({"cidr": "10.0.0.0/24", "dns_nameservers": "not-an-address"}, "not-an-address"),
    ({"cidr": ""}, "This field is required."),
    ({"cidr": "10.0.0.0/24", "gateway_ip": "10.0.0.9", "no_gateway": "on"}, "not both"),
])
def test_bad_network_input_is_shown_on_the_form_and_nothing_is_kept(member, fields, shown):
    response = signed_in(member).post("/networks/create", {
        "name": "bad", "with_subnet": "on", **fields})
    assert response.status_code == 400
    assert shown in _page(response)
    assert not Network.objects.filter(name="bad").exists()


def test_shared_and_external_are_offered_only_to_admins(member, admin):
    assert 'name="shared"' not in _page(signed_in(member).get("/networks/"))
    assert 'name="external"' in _page(signed_in(admin).get("/networks/"))
    # A forged field is ignored for a member: the network is the project's own
    signed_in(member).post("/networks/create", {"name": "sneaky", "shared": "on"})
    assert Network.objects.get(name="sneaky").shared is False


# --- routers


def test_a_router_with_a_gateway_gets_interfaces_and_is_deleted(member, public):
    client = signed_in(member)
    network = _create_network(client)
    subnet = network.subnets.get()
    response = client.post("/routers/create", {"name": "r1", "external_network": str(public.id)})
    router = Router.objects.get(name="r1")
    assert response.status_code == 302 and response["Location"] == f"/routers/{router.id}/"
    assert router.external_network_id == public.id
    listing = _page(client.get("/routers/"))
    assert "r1" in listing and "public" in listing and "172.24.4." in listing
    added = client.post(f"/routers/{router.id}/interfaces/add", {"subnet": str(subnet.id)},
                        follow=True)
    assert "Interface added." in _page(added) and "10.1.0.1" in _page(added)
    port = Port.objects.get(device_id=str(router.id), device_owner="network:router_interface")
    # Twice: the service refuses, and the form says why
    again = client.post(f"/routers/{router.id}/interfaces/add", {"subnet": str(subnet.id)})
    assert again.status_code == 400 and "Select a valid choice" in _page(again)
    in_use = client.post(f"/routers/{router.id}/delete", follow=True)
    assert "still has ports" in _page(in_use) and Router.objects.filter(pk=router.pk).exists()
    client.post(f"/routers/{router.id}/interfaces/{port.id}/remove")
    assert not Port.objects.filter(pk=port.pk).exists()
    client.post(f"/routers/{router.id}/gateway/clear")
    router.refresh_from_db()
    assert router.external_network_id is None
    client.post(f"/routers/{router.id}/gateway/set", {"external_network": str(public.id)})
    router.refresh_from_db()
    assert router.external_network_id == public.id
    gone = client.post(f"/routers/{router.id}/delete", follow=True)
    assert "Router r1 deleted." in _page(gone) and not Router.objects.exists()


def test_a_router_form_with_bad_input_answers_400_with_the_reason(member, public):
    client = signed_in(member)
    response = client.post("/routers/create", {"name": "", "external_network": "nonsense"})
    page = _page(response)
    assert response.status_code == 400
    assert "This field is required." in page and "Select a valid choice" in page
    assert not Router.objects.exists()


# --- security groups and the rules editor


def test_security_groups_are_created_edited_and_deleted(member):
    client = signed_in(member)
    listing = _page(client.get("/security-groups/"))
    default = SecurityGroup.objects.get(project=member.project, name="default")
    assert f'data-security-group="{default.id}"' in listing
    assert f"/security-groups/{default.id}/delete" not in listing  # the default group stays
    response = client.post("/security-groups/create", {"name": "web", "description": "www"})
    group = SecurityGroup.objects.get(name="web")
    assert response["Location"] == f"/security-groups/{group.id}/"
    ssh = client.post(f"/security-groups/{group.id}/rules/create", {
        "direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
        "port_range_min": "22", "remote_ip_prefix": "192.0.2.0/24"}, follow=True)
    assert "Rule added." in _page(ssh)
    rule = group.rules.get(protocol="tcp")
    assert (rule.port_range_min, rule.port_range_max, rule.remote_ip_prefix) == (
        22, 22, "192.0.2.0/24")
    client.post(f"/security-groups/{group.id}/rules/create", {
        "direction": "ingress", "ethertype": "IPv4", "protocol": "icmp",
        "remote_group": str(default.id)})
    icmp = group.rules.get(protocol="icmp")
    assert icmp.remote_group_id == default.id and icmp.port_range_min is None
    page = _page(client.get(f"/security-groups/{group.id}/"))
    assert f'data-rule="{rule.id}"' in page and "192.0.2.0/24" in page
    assert f'href="/security-groups/{default.id}/">default</a>' in page
    client.post(f"/security-groups/{group.id}/rules/{rule.id}/delete")
    assert not group.rules.filter(pk=rule.pk).exists()
    gone = client.post(f"/security-groups/{group.id}/delete", follow=True)
    assert "Security group web deleted." in _page(gone)
    assert not SecurityGroup.objects.filter(pk=group.pk).exists()


@pytest.mark.parametrize("fields, shown", [
    ({"protocol": "tcp", "port_range_min": "70000"}, "Invalid value for port 70000"),
    ({"protocol": "any", "port_range_min": "80"}, "Must also specify protocol"),
    ({"protocol": "icmp", "port_range_min": "300"}, "Invalid value for ICMP type"),
    ({"protocol": "tcp", "remote_ip_prefix": "2001:db8::/32"}, "Conflicting value ethertype"),
    ({"protocol": "tcp", "remote_ip_prefix": "10.0.0.0/8", "remote_group": "DEFAULT"},
     "not both"),
    ({"protocol": "gre"}, "Select a valid choice"),
])
def test_a_bad_rule_is_refused_with_the_reason_on_the_form(member, fields, shown):
    client = signed_in(member)
    client.post("/security-groups/create", {"name": "web"})
    group = SecurityGroup.objects.get(name="web")
    default = SecurityGroup.objects.get(project=member.project, name="default")
    if fields.get("remote_group") == "DEFAULT":
        fields = {**fields, "remote_group": str(default.id)}
    response = client.post(f"/security-groups/{group.id}/rules/create", {
        "direction": "ingress", "ethertype": "IPv4", **fields})
    assert response.status_code == 400
    assert shown in _page(response)
    assert not group.rules.filter(direction="ingress").exists()


def test_a_duplicate_rule_and_deleting_a_group_in_use_are_shown_as_reasons(member):
    client = signed_in(member)
    client.post("/security-groups/create", {"name": "web"})
    group = SecurityGroup.objects.get(name="web")
    rule = {"direction": "ingress", "ethertype": "IPv4", "protocol": "udp",
            "port_range_min": "53", "port_range_max": "53"}
    client.post(f"/security-groups/{group.id}/rules/create", rule)
    twice = client.post(f"/security-groups/{group.id}/rules/create", rule)
    assert twice.status_code == 400 and "Security group rule already exists" in _page(twice)
    network = _create_network(client)
    port = ipam.allocate_port(network, member.project.pk, "")
    port.security_groups.set([group])
    refused = client.post(f"/security-groups/{group.id}/delete", follow=True)
    assert "in use" in _page(refused) and SecurityGroup.objects.filter(pk=group.pk).exists()


# --- floating IPs


def _reachable_server(member, public):
    """A server with a port on a network whose router has its gateway on `public`."""
    client = signed_in(member)
    network = _create_network(client)
    client.post("/routers/create", {"name": "r1", "external_network": str(public.id)})
    router = Router.objects.get(name="r1")
    client.post(f"/routers/{router.id}/interfaces/add", {"subnet": str(network.subnets.get().id)})
    server = make_server(member, "web-1")
    port = ipam.allocate_port(network, member.project.pk, str(server.uuid))
    return client, server, port


def test_a_floating_ip_is_allocated_associated_disassociated_and_released(member, public):
    client, server, port = _reachable_server(member, public)
    allocated = client.post("/floating-ips/allocate", {"pool": str(public.id)}, follow=True)
    fip = FloatingIp.objects.get()
    assert f"Floating IP {fip.floating_ip_address} allocated." in _page(allocated)
    assert fip.floating_ip_address.startswith("172.24.4.")
    dialog = _page(client.get(f"/floating-ips/{fip.id}/associate"))
    assert f'value="{server.uuid}"' in dialog and "web-1" in dialog
    associated = client.post(f"/floating-ips/{fip.id}/associate", {"instance": str(server.uuid)},
                             follow=True)
    fip.refresh_from_db()
    assert fip.port_id == port.id and fip.status == "ACTIVE"
    row = _page(associated)
    row = row[row.index(f'data-floating-ip="{fip.id}"'):]
    row = row[:row.index("</tr>")]
    fixed = port.fixed_ips[0]["ip_address"]
    assert fixed in row and f'href="/instances/{server.uuid}/">web-1</a>' in row
    # The instance page lists its port with the floating address and its security group
    instance_page = _page(client.get(f"/instances/{server.uuid}/"))
    assert f'data-port="{port.id}"' in instance_page and fip.floating_ip_address in instance_page
    client.post(f"/floating-ips/{fip.id}/disassociate")
    fip.refresh_from_db()
    assert fip.port_id is None and fip.fixed_ip_address is None
    released = client.post(f"/floating-ips/{fip.id}/release", follow=True)
    assert "released" in _page(released) and not FloatingIp.objects.exists()


def test_associating_without_a_route_to_the_pool_says_why(member, public):
    client = signed_in(member)
    network = _create_network(client)  # no router
    server = make_server(member, "lonely")
    ipam.allocate_port(network, member.project.pk, str(server.uuid))
    client.post("/floating-ips/allocate", {"pool": str(public.id)})
    fip = FloatingIp.objects.get()
    response = client.post(f"/floating-ips/{fip.id}/associate", {"instance": str(server.uuid)})
    assert response.status_code == 400 and "is not reachable from subnet" in _page(response)
    portless = make_server(member, "portless")
    response = client.post(f"/floating-ips/{fip.id}/associate", {"instance": str(portless.uuid)})
    assert response.status_code == 400 and "has no port" in _page(response)
    bogus = client.post(f"/floating-ips/{fip.id}/associate", {"instance": "nope"})
    assert bogus.status_code == 400 and "Select a valid choice" in _page(bogus)
    fip.refresh_from_db()
    assert fip.port_id is None


def test_allocating_from_a_network_that_is_not_a_pool_is_refused(member, public):
    client = signed_in(member)
    network = _create_network(client)
    response = client.post("/floating-ips/allocate", {"pool": str(network.id)})
    assert response.status_code == 400 and "Select a valid choice" in _page(response)
    assert not FloatingIp.objects.exists()


# --- topology


def test_the_topology_draws_networks_routers_and_instances_and_refreshes(member, other, public):
    _client, server, _port = _reachable_server(member, public)
    theirs = Network.objects.create(name="their-secret", project=other.project)
    page = _page(signed_in(member).get("/topology/"))
    assert "<svg" in page and 'hx-get="/topology/svg"' in page and "every 5s" in page
    network = Network.objects.get(name="net1")
    router = Router.objects.get(name="r1")
    for marker in (f'data-network="{network.id}"', f'data-network="{public.id}"',
                   f'data-router="{router.id}"', f'data-instance="{server.uuid}"'):
        assert marker in page, marker
    assert "web-1" in page and "10.1.0.1" in page
    fragment = signed_in(member).get("/topology/svg")
    assert fragment.status_code == 200 and _page(fragment).startswith("<svg")
    assert "their-secret" not in page and str(theirs.id) not in page
    # The instance's line reaches down to its network's bar (y2 past the bar's top)
    line = re.search(rf'<line data-link="{server.uuid}"[^>]*y2="(\d+)"', page)
    bar = re.search(rf'data-network="{network.id}"><a [^>]*>\s*<rect x="10" y="(\d+)"', page)
    assert line and bar and int(line.group(1)) > int(bar.group(1))
    assert f'data-link="{router.id}"' in page


# --- tenancy and roles


def test_another_projects_resources_are_not_shown_and_their_pages_are_missing(member, other,
                                                                             public):
    theirs = _create_network(signed_in(other), name="beta-net", cidr="10.7.0.0/24")
    signed_in(other).post("/routers/create", {"name": "beta-router"})
    signed_in(other).post("/security-groups/create", {"name": "beta-group"})
    signed_in(other).post("/floating-ips/allocate", {"pool": str(public.id)})
    router = Router.objects.get(name="beta-router")
    group = SecurityGroup.objects.get(name="beta-group")
    fip = FloatingIp.objects.get()
    client = signed_in(member)
    assert "beta-net" not in _page(client.get("/networks/"))
    assert "beta-router" not in _page(client.get("/routers/"))
    assert "beta-group" not in _page(client.get("/security-groups/"))
    assert fip.floating_ip_address not in _page(client.get("/floating-ips/"))
    for url in (f"/networks/{theirs.id}/", f"/networks/{theirs.id}/delete",
                f"/subnets/{theirs.subnets.get().id}/delete", f"/routers/{router.id}/",
                f"/security-groups/{group.id}/", f"/floating-ips/{fip.id}/associate",
                f"/floating-ips/{fip.id}/release"):
        assert client.get(url).status_code == 404, url
    for url in (f"/networks/{theirs.id}/delete", f"/routers/{router.id}/delete",
                f"/security-groups/{group.id}/delete", f"/floating-ips/{fip.id}/release",
                f"/floating-ips/{fip.id}/disassociate"):
        assert client.post(url).status_code == 404, url
    assert Network.objects.filter(pk=theirs.pk).exists() and Router.objects.filter(
        pk=router.pk).exists() and SecurityGroup.objects.filter(pk=group.pk).exists()
    assert FloatingIp.objects.filter(pk=fip.pk).exists()


def test_a_reader_sees_the_panels_but_cannot_change_anything(reader, member, public):
    network = _create_network(signed_in(member))
    client = signed_in(reader)
    for url, form in (("/networks/", "/networks/create"), ("/routers/", "/routers/create"),
                      ("/security-groups/", "/security-groups/create"),
                      ("/floating-ips/", "/floating-ips/allocate")):
        page = client.get(url)
        assert page.status_code == 200, url
        assert f'action="{form}"' not in _page(page), url
        assert client.post(form, {"name": "nope", "pool": str(public.id)}).status_code == 403
    detail = _page(client.get(f"/networks/{network.id}/"))
    assert "Delete network" not in detail and "Add a subnet" not in detail
    assert client.post(f"/networks/{network.id}/delete").status_code == 403
    assert client.post(f"/networks/{network.id}/subnets/create",
                       {"cidr": "10.5.0.0/24"}).status_code == 403
    assert [n.name for n in Network.objects.exclude(pk=public.pk)] == ["net1"]
    assert not Router.objects.exists() and not FloatingIp.objects.exists()
    assert not SecurityGroup.objects.filter(name="nope").exists()


def test_the_navigation_offers_the_networking_panels(member):
    page = _page(signed_in(member).get("/"))
    for href in ("/networks/", "/routers/", "/security-groups/", "/floating-ips/", "/topology/"):
        assert f'<a href="{href}"' in page, href


# --- the launch dialog


@pytest.fixture
def image_flavor(image, flavor):
    return image, flavor


def test_the_launch_dialog_offers_networks_ports_and_groups(member, other, image_flavor):
    client = signed_in(member)
    mine = _create_network(client, name="mine")
    _create_network(signed_in(other), name="not-mine", cidr="10.2.0.0/24")
    shared = Network.objects.create(name="everyone", shared=True)
    client.post("/security-groups/create", {"name": "web"})
    free = port_services.create_port(_ctx(member), {"network_id": str(mine.id), "name": "spare"})
    page = _page(client.get("/instances/launch/"))
    assert f'value="{mine.id}"' in page and "mine (10.1.0.0/24)" in page
    assert f'value="{shared.id}"' in page and "not-mine" not in page
    assert f'value="{free.id}"' in page and "spare" in page
    default = SecurityGroup.objects.get(project=member.project, name="default")
    web = SecurityGroup.objects.get(name="web")
    checked = re.search(rf'<input[^>]*value="{default.id}"[^>]*>', page)
    assert checked and "checked" in checked.group(0)  # the default group is preselected
    unchecked = re.search(rf'<input[^>]*value="{web.id}"[^>]*>', page)
    assert unchecked and "checked" not in unchecked.group(0)


def test_a_launch_sends_the_chosen_networks_port_and_groups(member, image_flavor, sent):
    image, flavor = image_flavor
    client = signed_in(member)
    first = _create_network(client, name="first")
    second = _create_network(client, name="second", cidr="10.2.0.0/24")
    client.post("/security-groups/create", {"name": "web"})
    web = SecurityGroup.objects.get(name="web")
    default = SecurityGroup.objects.get(project=member.project, name="default")
    spare = port_services.create_port(_ctx(member), {"network_id": str(first.id),
                                                     "name": "spare"})
    response = client.post("/instances/launch/", {
        "name": "multi", "image": str(image.id), "flavor": flavor.flavorid, "count": "1",
        "networks": [str(second.id), str(first.id)], "port": str(spare.id),
        "security_groups": [str(web.id), str(default.id)]})
    assert response.status_code == 302, _page(response)
    instance = Instance.objects.get(display_name="multi")
    assert instance.requested_networks == [str(second.id), str(first.id), str(first.id)]
    assert instance.security_groups == ["web", "default"]
    spare.refresh_from_db()
    assert spare.device_id == str(instance.uuid)
    made = Port.objects.filter(device_id=str(instance.uuid)).exclude(pk=spare.pk)
    assert sorted(str(p.network_id) for p in made) == sorted([str(first.id), str(second.id)])
    assert all({g.name for g in p.security_groups.all()} == {"web", "default"} for p in made)
    page = _page(client.get(f"/instances/{instance.uuid}/"))
    assert page.count("data-port=") == 3
    assert f'<a href="/security-groups/{web.id}/">web</a>' in page


def test_a_launch_with_a_port_it_cannot_use_says_why(member, image_flavor, sent):
    image, flavor = image_flavor
    client = signed_in(member)
    network = _create_network(client)
    spare = port_services.create_port(_ctx(member), {"network_id": str(network.id)})
    fields = {"name": "two", "image": str(image.id), "flavor": flavor.flavorid, "count": "2",
              "port": str(spare.id)}
    response = client.post("/instances/launch/", fields)
    assert response.status_code == 400
    assert "Multiple instances cannot share one port" in _page(response)
    spare.device_id = str(make_server(member, "holder").uuid)
    spare.save()
    response = client.post("/instances/launch/", {**fields, "count": "1"})
    page = _page(response)
    assert response.status_code == 400
    # The port is no longer offered (it is attached), so the form refuses the choice itself
    assert "Select a valid choice" in page[page.index('name="port"'):]
    assert list(Instance.objects.values_list("display_name", flat=True)) == ["holder"]
