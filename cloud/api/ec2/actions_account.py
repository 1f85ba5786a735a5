"""Where things are: DescribeRegions (the catalog's regions, each answering at this endpoint) and
DescribeAvailabilityZones (Nova's zones of compute hosts)."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from cloud.compute import availability_zones
from cloud.identity.models import Region

from . import listing
from .registry import Call, action

ZONE_FILTERS: listing.Filters = {
    "zone-name": listing.path("zoneName"),
    "state": listing.path("zoneState"),
    "region-name": listing.path("regionName"),
    "zone-id": listing.path("zoneId"),
    "zone-type": listing.path("zoneType"),
    "group-name": listing.path("groupName"),
}
REGION_FILTERS: listing.Filters = {
    "region-name": listing.path("regionName"),
    "endpoint": listing.path("regionEndpoint"),
    "opt-in-status": listing.path("optInStatus"),
}


@action("DescribeRegions", None)
def describe_regions(call: Call) -> dict[str, Any]:
    names = sorted(Region.objects.values_list("id", flat=True)) or [settings.KUMO_REGION]
    wanted = call.params.strings("RegionName")
    items = [{"regionName": name, "regionEndpoint": f"{call.base_url}/ec2",
              "optInStatus": "opt-in-not-required"}
             for name in names if not wanted or name in wanted]
    return {"regionInfo": listing.apply(items, call.params, REGION_FILTERS)}


@action("DescribeAvailabilityZones", "compute:availability_zones:list")
def describe_availability_zones(call: Call) -> dict[str, Any]:
    wanted = call.params.strings("ZoneName")
    items = []
    for zone in availability_zones.list_zones(include_internal=False):
        if wanted and zone.name not in wanted:
            continue
        items.append({
            "zoneName": zone.name, "zoneState": "available" if zone.available else "unavailable",
            "regionName": settings.KUMO_REGION, "zoneId": zone.name,
            "zoneType": "availability-zone", "groupName": settings.KUMO_REGION,
            "networkBorderGroup": settings.KUMO_REGION, "optInStatus": "opt-in-not-required",
            "messageSet": [],
        })
    return {"availabilityZoneInfo": listing.apply(items, call.params, ZONE_FILTERS)}
