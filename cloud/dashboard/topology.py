"""Network topology: a picture of the project's networks, routers and instances, drawn on the
server as SVG (no drawing library in the browser). Networks are horizontal bars; each router and
instance is a box above them with a line down to every network it has a port on, the port's
address written at the joint (and the floating IP mapped onto it). The page reloads the picture
every few seconds (htmx), so a new instance or router shows up without a reload.

Everything comes from the service functions, with the viewer's context: what the picture shows
is what the panels show."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from cloud.compute.models import Instance
from cloud.identity.context import RequestContext
from cloud.network import floating_ips as fip_services
from cloud.network import networks as network_services
from cloud.network import ports as port_services
from cloud.network import routers as router_services

from .context import dashboard_view
from .networks import READ

REFRESH_SECONDS = 5
LEFT, TOP, COLUMN, BOX_W, BOX_H, ROW = 180, 16, 130, 112, 44, 58
BAR_H = 10
PALETTE = ["#2b7bb9", "#3a9d5d", "#b9772b", "#8e44ad", "#c0392b", "#16a085", "#7f8c8d"]
EXTERNAL_COLOUR = "#444"


@dataclass
class Bar:
    id: str
    name: str
    cidrs: str
    external: bool
    y: int
    colour: str


@dataclass
class Joint:
    y: int
    label: str
    colour: str


@dataclass
class Box:
    kind: str  # "router" | "instance"
    id: str
    name: str
    status: str
    x: int
    href: str
    joints: list[Joint] = field(default_factory=list)

    @property
    def centre(self) -> int:
        return self.x + BOX_W // 2

    @property
    def line_end(self) -> int:
        return max((j.y for j in self.joints), default=TOP + BOX_H)


@dataclass
class Picture:
    bars: list[Bar]
    boxes: list[Box]
    width: int
    height: int


def _short(text: str, length: int = 16) -> str:
    return text if len(text) <= length else text[: length - 1] + "…"


def picture(ctx: RequestContext) -> Picture:
    networks = network_services.list_networks(ctx, {})
    bars: dict[str, Bar] = {}
    first_bar = TOP + BOX_H + 46
    for index, network in enumerate(sorted(networks, key=lambda n: (not n.external, n.name))):
        bars[str(network.id)] = Bar(
            id=str(network.id), name=_short(network.name or str(network.id), 22),
            cidrs=", ".join(s.cidr for s in network.subnets.all()), external=network.external,
            y=first_bar + index * ROW,
            colour=EXTERNAL_COLOUR if network.external else PALETTE[index % len(PALETTE)])

    def joint(network_id: object, label: str) -> Joint | None:
        bar = bars.get(str(network_id))
        return Joint(y=bar.y, label=label, colour=bar.colour) if bar else None

    boxes: list[Box] = []
    for router in router_services.list_routers(ctx, {}):
        box = Box("router", str(router.id), _short(router.name or str(router.id)),
                  router.status, LEFT + len(boxes) * COLUMN, f"/routers/{router.id}/")
        info = router_services.gateway_info(router)
        if info is not None:
            addresses = [e.get("ip_address", "") for e in info["external_fixed_ips"]]
            found = joint(info["network_id"], ", ".join(addresses))
            if found:
                box.joints.append(found)
        for port in router_services.interfaces(router):
            found = joint(port.network_id, ", ".join(e.get("ip_address", "")
                                                     for e in port.fixed_ips or []))
            if found:
                box.joints.append(found)
        boxes.append(box)

    instances = list(Instance.objects.filter(project_id=ctx.project_id, deleted=False)
                     .order_by("display_name"))
    ports = port_services.list_ports(ctx, {"device_id": [str(i.uuid) for i in instances]}) \
        if instances else []
    floating: dict[str, list[str]] = {}
    for fip in fip_services.list_floating_ips(ctx, {}):
        if fip.port_id:
            floating.setdefault(str(fip.port_id), []).append(fip.floating_ip_address)
    for instance in instances:
        box = Box("instance", str(instance.uuid), _short(instance.display_name),
                  instance.vm_state.upper(), LEFT + len(boxes) * COLUMN,
                  f"/instances/{instance.uuid}/")
        for port in ports:
            if port.device_id != str(instance.uuid):
                continue
            label = ", ".join(e.get("ip_address", "") for e in port.fixed_ips or [])
            if floating.get(str(port.id)):
                label += " (" + ", ".join(floating[str(port.id)]) + ")"
            found = joint(port.network_id, label)
            if found:
                box.joints.append(found)
        boxes.append(box)

    # Room on the right for the last column's address labels.
    width = max(LEFT + len(boxes) * COLUMN + 150, 520)
    height = (max((b.y for b in bars.values()), default=TOP + BOX_H) + BAR_H + 24)
    return Picture(bars=list(bars.values()), boxes=boxes, width=width, height=height)


def _context(ctx: RequestContext) -> dict:
    return {"picture": picture(ctx), "box_w": BOX_W, "box_h": BOX_H, "top": TOP,
            "bar_h": BAR_H, "refresh": REFRESH_SECONDS}


@require_GET
@dashboard_view(READ)
def topology(request: HttpRequest, ctx: RequestContext) -> HttpResponse:
    return render(request, "dashboard/topology.html", _context(ctx))


@require_GET
@dashboard_view(READ)
def topology_svg(request: HttpRequest, ctx: RequestContext) -> HttpResponse:
    """The picture alone, for the page's periodic refresh."""
    return render(request, "dashboard/fragments/topology_svg.html", _context(ctx))
