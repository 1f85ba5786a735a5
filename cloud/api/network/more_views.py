"""Neutron v2.0 over HTTP: security groups and rules, routers and their interfaces, floating IPs,
quotas and agents (thin over cloud/network/ and, for agents, cloud/compute/network_agents)."""

from __future__ import annotations

from rest_framework.request import Request
from rest_framework.response import Response

from cloud import errors
from cloud.compute import network_agents
from cloud.identity import policy
from cloud.network import floating_ips, quotas, routers
from cloud.network import security_groups as groups

from .bodies import floating_ip_body, router_body
from .views import Collection, FixedMember, Member, NeutronView


class SecurityGroups(Collection):
    key = "security_group"
    lister, creator, shape = groups.list_groups, groups.create_group, groups.group_body
    query_params = {"GET": ("fields", "id", "name", "project_id", "tenant_id", "description",
                            "stateful")}


class SecurityGroupDetail(Member):
    key = "security_group"
    getter, updater, deleter = groups.get_group, groups.update_group, groups.delete_group
    shape = groups.group_body


class SecurityGroupRules(Collection):
    key = "security_group_rule"
    lister, creator, shape = groups.list_rules, groups.create_rule, groups.rule_body
    query_params = {"GET": ("fields", "id", "security_group_id", "direction", "ethertype",
                            "protocol", "port_range_min", "port_range_max", "remote_ip_prefix",
                            "remote_group_id", "project_id", "tenant_id", "description")}


class SecurityGroupRuleDetail(FixedMember):
    key = "security_group_rule"
    getter, deleter = groups.get_rule, groups.delete_rule
    shape = groups.rule_body


class Routers(Collection):
    key = "router"
    lister, creator, shape = routers.list_routers, routers.create_router, router_body
    query_params = {"GET": ("fields", "id", "name", "description", "status", "admin_state_up",
                            "project_id", "tenant_id")}


class RouterDetail(Member):
    key = "router"
    getter, updater, deleter = routers.get_router, routers.update_router, routers.delete_router
    shape = router_body


class RouterAddInterface(NeutronView):
    def put(self, request: Request, router_id: str) -> Response:
        return Response(routers.add_interface(self.ctx, router_id, self.body()))


class RouterRemoveInterface(NeutronView):
    def put(self, request: Request, router_id: str) -> Response:
        return Response(routers.remove_interface(self.ctx, router_id, self.body()))


class FloatingIps(Collection):
    key = "floatingip"
    lister, creator, shape = (floating_ips.list_floating_ips, floating_ips.create_floating_ip,
                              floating_ip_body)
    query_params = {"GET": ("fields", "id", "floating_ip_address", "floating_network_id",
                            "fixed_ip_address", "port_id", "router_id", "status", "description",
                            "project_id", "tenant_id")}


class FloatingIpDetail(Member):
    key = "floatingip"
    getter, updater, deleter = (floating_ips.get_floating_ip, floating_ips.update_floating_ip,
                                floating_ips.delete_floating_ip)
    shape = floating_ip_body


class Quotas(NeutronView):
    def get(self, request: Request) -> Response:
        return Response({"quotas": quotas.list_quotas(self.ctx)})


class QuotaDefault(NeutronView):
    def get(self, request: Request, project_id: str) -> Response:
        return Response({"quota": quotas.get_defaults(self.ctx, project_id)})


class Quota(NeutronView):
    def get(self, request: Request, project_id: str) -> Response:
        return Response({"quota": quotas.get_quota(self.ctx, project_id)})

    def put(self, request: Request, project_id: str) -> Response:
        return Response({"quota": quotas.update_quota(self.ctx, project_id,
                                                      self.resource("quota"))})

    def delete(self, request: Request, project_id: str) -> Response:
        quotas.reset_quota(self.ctx, project_id)
        return Response(status=204)


class QuotaDetails(NeutronView):
    def get(self, request: Request, project_id: str) -> Response:
        return Response({"quota": quotas.get_quota_details(self.ctx, project_id)})


class Agents(NeutronView):
    query_params = {"GET": ("fields", "id", "agent_type", "binary", "host", "topic", "alive",
                            "admin_state_up", "availability_zone")}

    def get(self, request: Request) -> Response:
        # Neutron filters a list by the policy of each item: a non-admin sees no agents.
        if not policy.allowed(self.ctx, "network:agents"):
            return Response({"agents": []})
        agents = network_agents.list_agents(self.filters())
        return Response({"agents": [self.pick(a) for a in agents]})


class AgentDetail(NeutronView):
    query_params = {"GET": ("fields",)}

    def get(self, request: Request, agent_id: str) -> Response:
        if not policy.allowed(self.ctx, "network:agents"):
            raise errors.NotFound(f"Agent {agent_id} could not be found",
                                  neutron_type="AgentNotFound")
        return Response({"agent": self.pick(network_agents.get_agent(agent_id))})
