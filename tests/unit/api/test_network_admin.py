"""Network quotas (cloud/network/quotas.py), agents (cloud/compute/network_agents.py) and the
extension list over Neutron's API."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from cloud.compute.models import Service

N = "/network/v2.0"


def test_quota_update_show_details_and_reset(api_as, admin, member, other):
    pid = member.project.id
    changed = api_as(admin).put(f"{N}/quotas/{pid}", {"quota": {"network": 3, "port": -1}})
    assert changed.status_code == 200, changed.content
    assert changed.json()["quota"]["network"] == 3 and changed.json()["quota"]["port"] == -1
    assert api_as(member).get(f"{N}/quotas/{pid}").json()["quota"]["network"] == 3
    assert api_as(member).get(f"{N}/quotas/{pid}/default").json()["quota"]["network"] == 100
    api_as(member).post(f"{N}/networks", {"network": {"name": "x"}})
    details = api_as(member).get(f"{N}/quotas/{pid}/details").json()["quota"]
    assert details["network"] == {"limit": 3, "used": 1, "reserved": 0}
    listed = api_as(admin).get(f"{N}/quotas").json()["quotas"]
    assert [q["project_id"] for q in listed] == [pid]
    assert api_as(admin).delete(f"{N}/quotas/{pid}").status_code == 204
    assert api_as(member).get(f"{N}/quotas/{pid}").json()["quota"]["network"] == 100
    # members may not change quotas, nor read another project's
    assert api_as(member).put(f"{N}/quotas/{pid}", {"quota": {"network": 9}}).status_code == 403
    assert api_as(other).get(f"{N}/quotas/{pid}").status_code == 403
    for bad in ({"quota": {"network": -2}}, {"quota": {"bogus": 1}}, {"quota": {"port": "x"}},
                {"quota": []}, {}):
        response = api_as(admin).put(f"{N}/quotas/{pid}", bad)
        assert response.status_code == 400, (bad, response.content)
        assert "NeutronError" in response.json()


def test_compute_quota_reset_leaves_network_quotas(api_as, admin, member):
    pid = member.project.id
    api_as(admin).put(f"{N}/quotas/{pid}", {"quota": {"router": 4}})
    assert api_as(admin).delete(f"/compute/v2.1/os-quota-sets/{pid}").status_code == 202
    assert api_as(member).get(f"{N}/quotas/{pid}").json()["quota"]["router"] == 4


def test_agents_follow_the_compute_services(api_as, admin, member):
    Service.objects.create(host="hn-1", binary="nova-compute", last_seen_up=timezone.now())
    Service.objects.create(host="hn-2", binary="nova-compute",
                           last_seen_up=timezone.now() - timedelta(hours=1))
    Service.objects.create(host="ctl", binary="kumo-scheduler", last_seen_up=timezone.now())
    response = api_as(admin).get(f"{N}/agents")
    assert response.status_code == 200, response.content
    agents = response.json()["agents"]
    assert {(a["host"], a["binary"], a["alive"]) for a in agents} == {
        (host, binary, host == "hn-1")
        for host in ("hn-1", "hn-2")
        for binary in ("neutron-linuxbridge-agent", "neutron-dhcp-agent", "neutron-l3-agent")
    }
    assert {a["agent_type"] for a in agents} == {"Linux bridge agent", "DHCP agent", "L3 agent"}
    l3 = api_as(admin).get(f"{N}/agents?agent_type=L3 agent&host=hn-2").json()["agents"]
    assert len(l3) == 1 and l3[0]["alive"] is False
    one = api_as(admin).get(f"{N}/agents/{l3[0]['id']}")
    assert one.status_code == 200 and one.json()["agent"]["host"] == "hn-2"
    assert api_as(admin).get(f"{N}/agents/nope").status_code == 404
    # as in Neutron, a non-admin's list is empty and an agent is missing
    assert api_as(member).get(f"{N}/agents").json() == {"agents": []}
    assert api_as(member).get(f"{N}/agents/{l3[0]['id']}").status_code == 404


def test_extensions_name_what_exists(api_as, member):
    aliases = {e["alias"] for e in api_as(member).get(f"{N}/extensions").json()["extensions"]}
    assert {"router", "external-net", "security-group", "quotas", "allowed-address-pairs",
            "port-security", "extraroute", "agent", "binding", "provider"} <= aliases
    assert api_as(member).get(f"{N}/extensions/router").status_code == 200
