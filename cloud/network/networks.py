"""Neutron v2.0 networks: who sees which, their filters, and their creation, change and removal.

Tenancy: a project sees shared and external networks plus its own, and the subnets of every network
it sees; it sees only its own ports. An admin sees everything. Anything else answers 404; a network
the caller sees but does not own is refused (403) to anyone but an admin.

A tenant network is a VXLAN segment with a VNI of its own (the lowest free one from FIRST_VNI); an
external network (admins only) is flat, on the physical network "public".
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet

from cloud import errors
from cloud.identity.context import RequestContext

from . import common, dataplane, quotas
from . import security_groups as groups
from .models import FloatingIp, Network, Port

Filters = common.Filters

FIRST_VNI = 1000
MAX_VNI = 2**24 - 1
VXLAN_MTU, FLAT_MTU, MIN_MTU = 1450, 1500, 68
PUBLIC_PHYSNET = "public"
_VNI_ATTEMPTS = 8

# kept for existing callers; the quotas live in cloud/network/quotas.py
DEFAULT_QUOTA = quotas.DEFAULT_QUOTA
_SG_NAMESPACE = groups._SG_NAMESPACE


def visible_networks(ctx: RequestContext) -> QuerySet[Network]:
    networks = Network.objects.all()
    if ctx.is_admin:
        return networks
    return networks.filter(Q(shared=True) | Q(external=True) | Q(project_id=ctx.project_id))


_NETWORK_FILTERS: common.FilterSpec = {
    "id": ("pk", common.ids),
    "name": ("name", str),
    "shared": ("shared", common.as_bool),
    "router:external": ("external", common.as_bool),
    "admin_state_up": ("admin_state_up", common.as_bool),
    "port_security_enabled": ("port_security_enabled", common.as_bool),
    "mtu": ("mtu", int),
    "project_id": ("project_id", str),
    "tenant_id": ("project_id", str),
    "description": ("description", str),
    "provider:network_type": ("network_type", str),
    "provider:physical_network": ("physical_network", str),
    "provider:segmentation_id": ("segmentation_id", int),
}


def list_networks(ctx: RequestContext, filters: Filters) -> list[Network]:
    common.authorize_read(ctx)
    networks = common.filter_by(visible_networks(ctx), filters, _NETWORK_FILTERS)
    if "status" in filters and "ACTIVE" not in filters["status"]:
        return []  # every network is ACTIVE
    return list(networks.prefetch_related("subnets"))


def get_network(ctx: RequestContext, network_id: object) -> Network:
    common.authorize_read(ctx)
    return common.one(
        visible_networks(ctx).prefetch_related("subnets"), network_id, "NetworkNotFound", "Network"
    )


_ATTRS = ("name", "description", "admin_state_up", "shared", "router:external", "mtu",
          "port_security_enabled", "project_id", "tenant_id", "provider:network_type",
          "provider:physical_network", "provider:segmentation_id", "availability_zone_hints",
          "is_default", "dns_domain", "qos_policy_id")
_UPDATABLE = ("name", "description", "admin_state_up", "shared", "mtu", "port_security_enabled",
              "router:external", "is_default", "dns_domain", "qos_policy_id")


def _mtu(value: object, network_type: str) -> int:
    most = VXLAN_MTU if network_type == "vxlan" else FLAT_MTU
    mtu = common.integer(value, "mtu", 0, 2**31 - 1)
    if mtu < MIN_MTU:
        raise common.invalid("mtu", value, f"'{value}' is too small - must be at least '{MIN_MTU}'")
    if mtu > most:
        raise errors.BadRequest(f"Requested MTU is too big, maximum is {most}",
                                neutron_type="InvalidInput")
    return mtu


def _extras(data: dict) -> None:
    """Attributes clients send that Kumo has no use for: accepted only at their empty value."""
    if data.get("availability_zone_hints") not in (None, []):
        raise errors.BadRequest("Availability zones are not supported for networks.")
    for name in ("is_default", "dns_domain", "qos_policy_id"):
        if data.get(name) not in (None, False, ""):
            raise errors.BadRequest(f"The attribute {name} is not supported.")


def _provider(ctx: RequestContext, data: dict, external: bool) -> tuple[str, str | None, int | None]:
    given = {k: data[k] for k in data if k.startswith("provider:") and data[k] is not None}
    if given and not ctx.is_admin:
        raise errors.Forbidden("rule:create_network:provider:network_type is disallowed by "
                               "policy", neutron_type="PolicyNotAuthorized")
    if external and not given:
        return "flat", PUBLIC_PHYSNET, None
    network_type = given.get("provider:network_type", "vxlan")
    if network_type not in ("vxlan", "flat"):
        raise common.invalid("provider:network_type", network_type,
                             f"network type {network_type} is not supported (vxlan, flat)")
    if network_type == "flat":
        physnet = given.get("provider:physical_network", PUBLIC_PHYSNET)
        if physnet != PUBLIC_PHYSNET:
            raise common.invalid("provider:physical_network", physnet,
                                 f"unknown physical network {physnet}")
        if "provider:segmentation_id" in given:
            raise common.invalid("provider:segmentation_id", given["provider:segmentation_id"],
                                 "a flat network has no segmentation id")
        return "flat", physnet, None
    if "provider:physical_network" in given:
        raise common.invalid("provider:physical_network", given["provider:physical_network"],
                             "a vxlan network has no physical network")
    vni = given.get("provider:segmentation_id")
    if vni is not None:
        vni = common.integer(vni, "provider:segmentation_id", 1, MAX_VNI)
        if Network.objects.filter(segmentation_id=vni).exists():
            raise errors.Conflict(f"Unable to create the network. The VXLAN {vni} is in use.",
                                  neutron_type="TunnelIdInUse")
    return "vxlan", None, vni


def next_vni() -> int:
    used = Network.objects.filter(segmentation_id__gte=FIRST_VNI).order_by(
        "segmentation_id").values_list("segmentation_id", flat=True)
    vni = FIRST_VNI
    for taken in used:
        if taken != vni:
            break
        vni += 1
    if vni > MAX_VNI:
        raise errors.ServiceUnavailable("No free VXLAN network identifier is left.")
    return vni


def create_network(ctx: RequestContext, body: object) -> Network:
    common.authorize(ctx, "create_network")
    data = common.attrs(body, _ATTRS)
    _extras(data)
    project_id = common.owner_of(ctx, data)
    shared = common.boolean(data, "shared", False)
    external = common.boolean(data, "router:external", False)
    if shared:
        common.authorize(ctx, "create_network:shared", "network:networks:shared")
    if external:
        common.authorize(ctx, "create_network:router:external", "network:networks:external")
    network_type, physnet, vni = _provider(ctx, data, external)
    default_mtu = VXLAN_MTU if network_type == "vxlan" else FLAT_MTU
    fields = {
        "name": common.text(data, "name"),
        "description": common.text(data, "description", max_len=1024),
        "admin_state_up": common.boolean(data, "admin_state_up", True),
        "port_security_enabled": common.boolean(data, "port_security_enabled", True),
        "mtu": _mtu(data["mtu"], network_type) if data.get("mtu") is not None else default_mtu,
        "project_id": project_id, "shared": shared, "external": external,
        "network_type": network_type, "physical_network": physnet,
    }
    for _ in range(_VNI_ATTEMPTS):
        try:
            with transaction.atomic():
                quotas.check(project_id, "network")
                chosen = vni if vni is not None or network_type != "vxlan" else next_vni()
                return Network.objects.create(segmentation_id=chosen, **fields)
        except IntegrityError:
            if vni is not None:
                raise errors.Conflict(f"Unable to create the network. The VXLAN {vni} is in use.",
                                      neutron_type="TunnelIdInUse") from None
            continue  # another network took the same VNI at once: take the next
    raise errors.Conflict("Could not allocate a VXLAN network identifier; try again.")


def update_network(ctx: RequestContext, network_id: str, body: object) -> Network:
    network = get_network(ctx, network_id)
    common.authorize(ctx, "update_network")
    common.check_owner(ctx, network.project_id, "update_network")
    data = common.attrs(body, _UPDATABLE, read_only=[a for a in _ATTRS if a not in _UPDATABLE])
    _extras(data)
    with transaction.atomic():
        network = Network.objects.select_for_update().get(pk=network.pk)
        touched_ports = False
        if "name" in data:
            network.name = common.text(data, "name")
        if "description" in data:
            network.description = common.text(data, "description", max_len=1024)
        if "shared" in data:
            shared = common.boolean(data, "shared", network.shared)
            if shared != network.shared:
                common.authorize(ctx, "update_network:shared", "network:networks:shared")
                if not shared and network.ports.exclude(project_id=network.project_id).exclude(
                        device_owner__startswith="network:").exists():
                    raise errors.Conflict(
                        f"Unable to reconfigure sharing settings for network {network.id}. "
                        "Multiple tenants are using it.", neutron_type="InvalidSharedSetting")
            network.shared = shared
        if "router:external" in data:
            external = common.boolean(data, "router:external", network.external)
            if external != network.external:
                _change_external(ctx, network, external)
        if "admin_state_up" in data:
            state = common.boolean(data, "admin_state_up", network.admin_state_up)
            touched_ports = state != network.admin_state_up
            network.admin_state_up = state
        if "mtu" in data and data["mtu"] is not None:
            mtu = _mtu(data["mtu"], network.network_type)
            touched_ports = touched_ports or mtu != network.mtu
            network.mtu = mtu
        if "port_security_enabled" in data:
            # The default of the network's new ports: its ports keep their own setting.
            network.port_security_enabled = common.boolean(
                data, "port_security_enabled", network.port_security_enabled)
        network.save()
        if touched_ports:
            dataplane.notify_ports([str(p) for p in network.ports.values_list("pk", flat=True)])
    return get_network(ctx, network_id)


def _change_external(ctx: RequestContext, network: Network, external: bool) -> None:
    """An admin makes a network external (a flat network on physnet "public") or internal again
    (a VXLAN segment of its own); only while nothing but DHCP ports is on it, since the data
    plane carries the two kinds differently."""
    common.authorize(ctx, "update_network:router:external", "network:networks:external")
    if network.ports.exclude(device_owner=common.DHCP).exists():
        raise errors.Conflict(
            f"Unable to complete operation on network {network.id}. There are one or more "
            "ports still in use on the network.", neutron_type="NetworkInUse")
    network.external = external
    if external:
        network.network_type, network.physical_network = "flat", PUBLIC_PHYSNET
        network.segmentation_id = None
    else:
        network.network_type, network.physical_network = "vxlan", None
        network.segmentation_id = next_vni()
        network.mtu = min(network.mtu, VXLAN_MTU)


def delete_network(ctx: RequestContext, network_id: str) -> None:
    network = get_network(ctx, network_id)
    common.authorize(ctx, "delete_network")
    common.check_owner(ctx, network.project_id, "delete_network")
    with transaction.atomic():
        network = Network.objects.select_for_update().get(pk=network.pk)
        # Floating IPs that map nothing go with their external network, as in Neutron.
        loose = FloatingIp.objects.filter(floating_network=network, port__isnull=True)
        loose_ports = list(loose.values_list("floating_port_id", flat=True))
        loose.delete()
        Port.objects.filter(pk__in=loose_ports).delete()
        if network.ports.exclude(device_owner=common.DHCP).exists():
            raise errors.Conflict(
                f"Unable to complete operation on network {network.id}. There are one or more "
                "ports still in use on the network.", neutron_type="NetworkInUse")
        for port in network.ports.all():  # DHCP ports go with their network
            if port.binding_host:
                dataplane.notify_port_removed(str(port.id), port.binding_host)
        Port.objects.filter(network=network).delete()
        network.delete()


# --- kept for the compute side until it calls cloud.network.security_groups itself


def default_security_group(project_id: str) -> dict:
    """The project's "default" group in the API's shape (see security_groups.default_group)."""
    return groups.group_body(groups.default_group(project_id))
