"""Where would this fit? Kumo's extension to the compute API (admins only): the scheduler's
decision for a server not yet asked for, run dry (cloud/scheduler/explain.py).

    POST /os-kumo-placement-check
         {"placement_check": {"flavorRef": "2", "imageRef": "<uuid>", "availability_zone": "az1",
                              "group": "<server group uuid>"}}

Only flavorRef is required; the names are those of a server create body (the group is its
scheduler hint). 200 with every host: those that pass first, ranked as a boot would try them,
then each removed host with the filter that removed it and its reason in numbers. Nothing is
claimed. A flavor, image, group or zone a boot would refuse answers 400 as the boot would.
"""

from __future__ import annotations

from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response

from cloud.scheduler import explain

from ..base import ComputeView
from . import bodies

RULE = "compute:placement_check"

_REF = {"type": "string", "minLength": 1, "maxLength": 255}

_CHECK = {
    "type": "object",
    "required": ["placement_check"],
    "properties": {"placement_check": {
        "type": "object",
        "required": ["flavorRef"],
        "properties": {
            "flavorRef": _REF,
            "imageRef": _REF,
            "availability_zone": _REF,
            "group": _REF,
        },
        "additionalProperties": False,
    }},
    "additionalProperties": False,
}


def host_body(host: explain.HostAnswer) -> dict:
    return {
        "host": host.host,
        "hypervisor_hostname": host.node,
        "availability_zone": host.availability_zone,
        "passed": host.passed,
        "rank": host.rank,
        "weight": host.weight,
        "weights": host.weights,
        "filter": host.removed_by,
        "reason": host.reason or None,
        "free_vcpus": host.free_vcpus,
        "free_ram_mb": host.free_ram_mb,
        "free_disk_gb": host.free_disk_gb,
    }


def check_body(check: explain.PlacementCheck) -> dict:
    flavor, image, group, answer = check.flavor, check.image, check.group, check.answer
    return {
        "flavor": {"id": flavor.flavorid, "name": flavor.name, "vcpus": flavor.vcpus,
                   "ram": flavor.memory_mb, "disk": flavor.root_gb,
                   "ephemeral": flavor.ephemeral_gb},
        "image": None if image is None else {"id": str(image.id), "name": image.name},
        "group": None if group is None else {
            "id": str(group.uuid), "name": group.name, "policy": group.policy,
            "rules": group.rules or {}, "member_hosts": list(check.group_hosts)},
        "availability_zone": check.availability_zone,
        "checked_at": bodies.iso(check.checked_at),
        "considered": answer.considered,
        "fits": answer.fits,
        "hosts": [host_body(h) for h in answer.hosts],
        "filters": [{"name": name, "removed": removed} for name, removed in answer.filters],
    }


class PlacementCheck(ComputeView):
    body_schemas = {"POST": _CHECK}

    def post(self, request: Request) -> Response:
        self.authorize(RULE)
        wanted = self.valid_body()["placement_check"]
        check = explain.check_placement(
            self.ctx, flavor_ref=wanted["flavorRef"], image_ref=wanted.get("imageRef"),
            group_id=wanted.get("group"), availability_zone=wanted.get("availability_zone"))
        return Response({"placement_check": check_body(check)})


urlpatterns = [
    path("/os-kumo-placement-check", PlacementCheck.as_view()),
]
