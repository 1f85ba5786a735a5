"""/os-availability-zone (anyone with a token) and /os-availability-zone/detail (admins)."""

from __future__ import annotations

from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response

from cloud.compute import availability_zones
from cloud.compute.availability_zones import ZoneInfo

from ..base import ComputeView
from . import bodies


def _zone_body(zone: ZoneInfo, detail: bool) -> dict:
    hosts = None
    if detail and zone.available:
        hosts = {
            host: {
                s.binary: {
                    "available": s.alive,
                    "active": s.enabled,
                    "updated_at": bodies.iso_micro(s.updated_at),
                }
                for s in services
            }
            for host, services in zone.hosts.items()
        }
    return {"zoneName": zone.name, "zoneState": {"available": zone.available}, "hosts": hosts}


class AvailabilityZoneList(ComputeView):
    def get(self, request: Request) -> Response:
        self.authorize("compute:availability_zones:list")
        zones = availability_zones.list_zones(include_internal=False)
        return Response({"availabilityZoneInfo": [_zone_body(z, detail=False) for z in zones]})


class AvailabilityZoneDetail(ComputeView):
    def get(self, request: Request) -> Response:
        self.authorize("compute:availability_zones:detail")
        zones = availability_zones.list_zones(include_internal=True)
        return Response({"availabilityZoneInfo": [_zone_body(z, detail=True) for z in zones]})


urlpatterns = [
    path("/os-availability-zone", AvailabilityZoneList.as_view()),
    path("/os-availability-zone/detail", AvailabilityZoneDetail.as_view()),
]
