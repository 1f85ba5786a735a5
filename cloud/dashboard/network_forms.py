"""Forms of the networking panels. As in forms.py they check only what a person can get wrong in a
field; whether a CIDR overlaps, a port range suits its protocol or a network can reach the outside
is the Network API's judgement (cloud/network/), whose refusals the views attach to these forms.

Each form turns itself into the request body the service takes (`body()`), the same shape the
Network API receives, so a click and an API call are judged by one piece of code."""

from __future__ import annotations

from django import forms

from cloud.identity.context import RequestContext
from cloud.network import networks as network_services

from .forms import check_name


def _lines(text: str) -> list[str]:
    """One entry per line (or separated by commas or spaces), blanks dropped."""
    return [part for part in text.replace(",", " ").split() if part]


def external_choices(ctx: RequestContext) -> list[tuple[str, str]]:
    """External networks this project can see: floating IP pools and router gateways."""
    return [
        (str(n.id), n.name or str(n.id))
        for n in network_services.visible_networks(ctx).filter(external=True).order_by("name")
    ]


# --- networks and subnets


class SubnetFields(forms.Form):
    """A subnet's fields; the network form holds them too (its optional first subnet)."""

    subnet_name = forms.CharField(label="Subnet name", required=False, max_length=255)
    cidr = forms.CharField(label="Network address (CIDR)", required=False, max_length=64,
                           widget=forms.TextInput(attrs={"placeholder": "10.0.0.0/24"}))
    gateway_ip = forms.CharField(
        label="Gateway IP", required=False, max_length=64,
        help_text="Empty: the first address of the range.")
    no_gateway = forms.BooleanField(label="No gateway", required=False)
    enable_dhcp = forms.BooleanField(label="DHCP enabled", required=False, initial=True)
    dns_nameservers = forms.CharField(
        label="DNS servers", required=False,
        widget=forms.Textarea(attrs={"rows": 2, "spellcheck": "false"}),
        help_text="One address per line.")

    cidr_required = True

    def clean(self) -> dict:
        cleaned = super().clean()
        if self.cidr_required and not cleaned.get("cidr"):
            self.add_error("cidr", "This field is required.")
        if cleaned.get("no_gateway") and cleaned.get("gateway_ip"):
            self.add_error("gateway_ip", "Either a gateway or no gateway, not both.")
        return cleaned

    def subnet_body(self, network_id: str) -> dict:
        data = self.cleaned_data
        body: dict = {
            "network_id": network_id, "cidr": data["cidr"].strip(), "ip_version": 4,
            "name": data.get("subnet_name") or "", "enable_dhcp": bool(data.get("enable_dhcp")),
            "dns_nameservers": _lines(data.get("dns_nameservers") or ""),
        }
        if data.get("no_gateway"):
            body["gateway_ip"] = None
        elif data.get("gateway_ip"):
            body["gateway_ip"] = data["gateway_ip"].strip()
        return body


class SubnetForm(SubnetFields):
    pass


class NetworkForm(SubnetFields):
    name = forms.CharField(label="Name", max_length=255)
    admin_state_up = forms.BooleanField(label="Enabled (admin state up)", required=False,
                                        initial=True)
    shared = forms.BooleanField(label="Shared with every project", required=False)
    external = forms.BooleanField(label="External network", required=False)
    with_subnet = forms.BooleanField(label="Create a subnet", required=False, initial=True)

    field_order = ["name", "admin_state_up", "shared", "external", "with_subnet"]

    def __init__(self, ctx: RequestContext, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not ctx.is_admin:  # Neutron's admin-only attributes: not offered to others
            del self.fields["shared"], self.fields["external"]

    @property
    def cidr_required(self) -> bool:  # type: ignore[override]
        return bool(self.data.get("with_subnet"))

    def clean_name(self) -> str:
        return check_name(self.cleaned_data["name"])

    def network_body(self) -> dict:
        data = self.cleaned_data
        body = {"name": data["name"], "admin_state_up": bool(data.get("admin_state_up"))}
        if data.get("shared"):
            body["shared"] = True
        if data.get("external"):
            body["router:external"] = True
        return body


# --- routers


class RouterForm(forms.Form):
    name = forms.CharField(label="Name", max_length=255)
    external_network = forms.ChoiceField(label="External network", required=False)

    def __init__(self, ctx: RequestContext, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["external_network"].choices = [("", "None")] + external_choices(ctx)

    def clean_name(self) -> str:
        return check_name(self.cleaned_data["name"])

    def body(self) -> dict:
        body: dict = {"name": self.cleaned_data["name"]}
        if self.cleaned_data.get("external_network"):
            body["external_gateway_info"] = {"network_id": self.cleaned_data["external_network"]}
        return body


class GatewayForm(forms.Form):
    external_network = forms.ChoiceField(label="External network")

    def __init__(self, ctx: RequestContext, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["external_network"].choices = external_choices(ctx)


class InterfaceForm(forms.Form):
    subnet = forms.ChoiceField(label="Subnet")

    def __init__(self, subnets: list[tuple[str, str]], *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["subnet"].choices = [("", "Choose a subnet")] + subnets


# --- security groups


class SecurityGroupForm(forms.Form):
    name = forms.CharField(label="Name", max_length=255)
    description = forms.CharField(label="Description", required=False, max_length=1024)

    def clean_name(self) -> str:
        return check_name(self.cleaned_data["name"])


PROTOCOL_CHOICES = [("tcp", "TCP"), ("udp", "UDP"), ("icmp", "ICMP"), ("any", "Any")]


class RuleForm(forms.Form):
    direction = forms.ChoiceField(label="Direction",
                                  choices=[("ingress", "Ingress"), ("egress", "Egress")])
    ethertype = forms.ChoiceField(label="Ether type", choices=[("IPv4", "IPv4"), ("IPv6", "IPv6")])
    protocol = forms.ChoiceField(label="Protocol", choices=PROTOCOL_CHOICES)
    port_range_min = forms.IntegerField(
        label="Port from (ICMP type)", required=False,
        help_text="Empty: every port. One port: fill in only this one.")
    port_range_max = forms.IntegerField(label="Port to (ICMP code)", required=False)
    remote_ip_prefix = forms.CharField(label="Remote CIDR", required=False, max_length=64,
                                       widget=forms.TextInput(attrs={"placeholder": "0.0.0.0/0"}))
    remote_group = forms.ChoiceField(label="Remote security group", required=False)
    description = forms.CharField(label="Description", required=False, max_length=1024)

    def __init__(self, groups: list[tuple[str, str]], *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["remote_group"].choices = [("", "None (use the CIDR)")] + groups

    def clean(self) -> dict:
        cleaned = super().clean()
        if cleaned.get("remote_ip_prefix") and cleaned.get("remote_group"):
            self.add_error("remote_group", "Either a remote CIDR or a remote group, not both.")
        return cleaned

    def body(self, group_id: str) -> dict:
        data = self.cleaned_data
        body: dict = {
            "security_group_id": group_id, "direction": data["direction"],
            "ethertype": data["ethertype"], "description": data.get("description") or "",
        }
        if data["protocol"] != "any":
            body["protocol"] = data["protocol"]
        # As typed: the service makes one TCP/UDP port a range of one and judges the rest.
        for name in ("port_range_min", "port_range_max"):
            if data.get(name) is not None:
                body[name] = data[name]
        if data.get("remote_ip_prefix"):
            body["remote_ip_prefix"] = data["remote_ip_prefix"].strip()
        if data.get("remote_group"):
            body["remote_group_id"] = data["remote_group"]
        return body


# --- floating IPs


class AllocateForm(forms.Form):
    pool = forms.ChoiceField(label="Pool (external network)")
    description = forms.CharField(label="Description", required=False, max_length=1024)

    def __init__(self, ctx: RequestContext, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["pool"].choices = external_choices(ctx)


class AssociateForm(forms.Form):
    instance = forms.ChoiceField(label="Instance")

    def __init__(self, instances: list[tuple[str, str]], *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["instance"].choices = [("", "Choose an instance")] + instances
