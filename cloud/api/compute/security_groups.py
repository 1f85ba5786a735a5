"""GET /servers/{id}/os-security-groups: the server's security groups in Nova's (nova-network era)
shape, their ingress rules included. Adding and removing one is the addSecurityGroup and
removeSecurityGroup server actions (server_actions.py)."""

from __future__ import annotations

from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response

from cloud.compute import server_security_groups

from ..base import ComputeView


def _rule_body(rule: dict, groups: dict[str, dict]) -> dict:
    protocol = rule.get("protocol")
    low, high = rule.get("port_range_min"), rule.get("port_range_max")
    if protocol and low is None and high is None:
        low, high = (1, 65535) if protocol.upper() in ("TCP", "UDP") else (-1, -1)
    remote = rule.get("remote_group_id")
    body = {"id": rule["id"], "parent_group_id": rule["security_group_id"],
            "ip_protocol": protocol, "from_port": low, "to_port": high, "group": {},
            "ip_range": {}}
    if remote:
        source = groups.get(remote)
        body["group"] = {"name": source["name"], "tenant_id": source["project_id"]} if source \
            else {}
    else:
        body["ip_range"] = {"cidr": rule.get("remote_ip_prefix") or "0.0.0.0/0"}
    return body


def group_body(group: dict, groups: dict[str, dict]) -> dict:
    return {
        "id": group["id"],
        "name": group["name"],
        "description": group["description"],
        "tenant_id": group["project_id"],
        "rules": [_rule_body(r, groups) for r in group["security_group_rules"]
                  if r["direction"] == "ingress"],
    }


class ServerSecurityGroups(ComputeView):
    def get(self, request: Request, server_id: str) -> Response:
        instance = self.authorized_server(server_id, "compute:server_security_groups:list")
        groups = server_security_groups.groups_of(instance)
        by_id = {g["id"]: g for g in groups}
        shown = sorted((group_body(g, by_id) for g in groups),
                       key=lambda g: (g["tenant_id"], g["name"]))
        return Response({"security_groups": shown})


urlpatterns = [
    path("/servers/<str:server_id>/os-security-groups", ServerSecurityGroups.as_view()),
]
