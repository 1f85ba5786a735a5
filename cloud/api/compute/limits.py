"""/limits: the project's absolute limits next to what it uses ("rate" limits are always empty).

Shapes by microversion: the network keys go at 2.36, maxImageMeta at 2.39 (the image proxy is
gone), maxPersonality* at 2.57. `?reserved=` is accepted and changes nothing (nothing is ever
reserved here); `?tenant_id=` shows another project's to an admin.
"""

from __future__ import annotations

from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response

from cloud.compute import quotas

from ..base import ComputeView
from ..microversion import APIVersion


def absolute_body(limits: dict[str, int], used: dict[str, int], version: APIVersion) -> dict:
    body = {
        "maxTotalInstances": limits["instances"],
        "maxTotalCores": limits["cores"],
        "maxTotalRAMSize": limits["ram"],
        "maxServerMeta": limits["metadata_items"],
        "maxTotalKeypairs": limits["key_pairs"],
        "maxServerGroups": limits["server_groups"],
        "maxServerGroupMembers": limits["server_group_members"],
        "totalInstancesUsed": used["instances"],
        "totalCoresUsed": used["cores"],
        "totalRAMUsed": used["ram"],
        "totalServerGroupsUsed": used["server_groups"],
    }
    if not version.at_least("2.36"):
        body.update(
            {
                "maxTotalFloatingIps": limits["floating_ips"],
                "maxSecurityGroups": limits["security_groups"],
                "maxSecurityGroupRules": limits["security_group_rules"],
                "totalFloatingIpsUsed": 0,
                "totalSecurityGroupsUsed": 0,
            }
        )
    if not version.at_least("2.39"):
        body["maxImageMeta"] = limits["metadata_items"]
    if not version.at_least("2.57"):
        body.update(
            {
                "maxPersonality": limits["injected_files"],
                "maxPersonalitySize": limits["injected_file_content_bytes"],
            }
        )
    return body


class Limits(ComputeView):
    query_params = {"GET": ("tenant_id", "reserved")}

    def get(self, request: Request) -> Response:
        self.authorize("compute:limits")
        project_id = request.query_params.get("tenant_id") or self.ctx.project_id
        if project_id != self.ctx.project_id:
            self.authorize("compute:limits:other_project")
        limits, used = quotas.limits_and_usage(project_id)
        return Response(
            {"limits": {"rate": [], "absolute": absolute_body(limits, used, self.version)}}
        )


urlpatterns = [path("/limits", Limits.as_view())]
