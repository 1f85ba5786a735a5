"""Neutron's resources as Kumo stores them: networks, subnets, ports, security groups and their
rules, routers and floating IPs. The data plane that makes them carry packets is the compute
agents' network driver (compute_agent/network/); what it is told comes from these rows."""

import uuid

from django.db import models

from cloud.identity.models import Project


class Network(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=255)
    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.CASCADE)
    shared = models.BooleanField(default=False)
    external = models.BooleanField(default=False)
    admin_state_up = models.BooleanField(default=True)
    mtu = models.PositiveIntegerField(default=1450)
    description = models.TextField(blank=True, default="")
    port_security_enabled = models.BooleanField(default=True)
    # "vxlan": a tenant network, a bridge per host joined by VXLAN with this VNI. "flat": a
    # provider network on the host interface the agents map `physical_network` to (the external
    # network `public`).
    network_type = models.CharField(max_length=16, default="vxlan")
    physical_network = models.CharField(max_length=64, null=True, blank=True)
    segmentation_id = models.PositiveIntegerField(null=True, blank=True, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.name


class Subnet(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    network = models.ForeignKey(Network, on_delete=models.CASCADE, related_name="subnets")
    name = models.CharField(max_length=255, blank=True, default="")
    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.CASCADE)
    cidr = models.CharField(max_length=64)
    ip_version = models.PositiveSmallIntegerField(default=4)
    gateway_ip = models.CharField(max_length=64, null=True, blank=True)
    enable_dhcp = models.BooleanField(default=True)
    allocation_pools = models.JSONField(default=list, blank=True)
    dns_nameservers = models.JSONField(default=list, blank=True)
    # [{"destination": CIDR, "nexthop": IP}]
    host_routes = models.JSONField(default=list, blank=True)
    description = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.name} {self.cidr}"


class Port(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    network = models.ForeignKey(Network, on_delete=models.CASCADE, related_name="ports")
    name = models.CharField(max_length=255, blank=True, default="")
    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.CASCADE)
    device_id = models.CharField(max_length=255, blank=True, default="", db_index=True)
    device_owner = models.CharField(max_length=255, blank=True, default="")
    mac_address = models.CharField(max_length=32, unique=True)
    # [{"subnet_id": …, "ip_address": …}]
    fixed_ips = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=16, default="DOWN")
    admin_state_up = models.BooleanField(default=True)
    description = models.TextField(blank=True, default="")
    port_security_enabled = models.BooleanField(default=True)
    # [{"ip_address": IP or CIDR, "mac_address": MAC}]: more sources the port may send from.
    allowed_address_pairs = models.JSONField(default=list, blank=True)
    security_groups = models.ManyToManyField("SecurityGroup", blank=True, related_name="ports")
    # The host whose data plane carries the port (Neutron's binding:host_id); "" while unbound.
    binding_host = models.CharField(max_length=255, blank=True, default="", db_index=True)
    # Raised each time hosts are told about the port (NetworkInfo.revision).
    revision = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.name or self.id} on {self.network}"


class SecurityGroup(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=255, blank=True, default="")
    description = models.TextField(blank=True, default="")
    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.CASCADE)
    stateful = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            # One "default" group per project: made on first need by whoever gets there first.
            models.UniqueConstraint(
                fields=["project"], condition=models.Q(name="default"), name="one_default_sg"
            ),
        ]

    def __str__(self) -> str:
        return self.name or str(self.id)


class SecurityGroupRule(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    security_group = models.ForeignKey(SecurityGroup, on_delete=models.CASCADE,
                                       related_name="rules")
    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.CASCADE)
    direction = models.CharField(max_length=8)  # ingress | egress
    ethertype = models.CharField(max_length=8, default="IPv4")  # IPv4 | IPv6
    protocol = models.CharField(max_length=40, null=True, blank=True)  # name or number
    port_range_min = models.PositiveIntegerField(null=True, blank=True)
    port_range_max = models.PositiveIntegerField(null=True, blank=True)
    remote_ip_prefix = models.CharField(max_length=64, null=True, blank=True)
    remote_group = models.ForeignKey(SecurityGroup, null=True, blank=True,
                                     on_delete=models.CASCADE, related_name="remote_rules")
    description = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]


class Router(models.Model):
    """A router. Its interfaces are ports with device_owner network:router_interface and
    device_id the router's id; its gateway is a port on the external network."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=255, blank=True, default="")
    description = models.TextField(blank=True, default="")
    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.CASCADE)
    admin_state_up = models.BooleanField(default=True)
    status = models.CharField(max_length=16, default="ACTIVE")
    external_network = models.ForeignKey(Network, null=True, blank=True,
                                         on_delete=models.PROTECT, related_name="+")
    enable_snat = models.BooleanField(default=True)
    # [{"destination": CIDR, "nexthop": IP}]
    routes = models.JSONField(default=list, blank=True)
    # The host whose data plane runs the router (its namespace, NAT and floating IPs).
    host = models.CharField(max_length=255, blank=True, default="")
    # Raised each time its host is told about it (RouterSpec.revision).
    revision = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.name or str(self.id)


class FloatingIp(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.CASCADE)
    description = models.TextField(blank=True, default="")
    floating_network = models.ForeignKey(Network, on_delete=models.PROTECT, related_name="+")
    # The port on the external network that holds the address (device_owner network:floatingip).
    floating_port = models.OneToOneField(Port, on_delete=models.PROTECT, related_name="+")
    floating_ip_address = models.CharField(max_length=64)
    port = models.ForeignKey(Port, null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="floating_ips")
    fixed_ip_address = models.CharField(max_length=64, null=True, blank=True)
    router = models.ForeignKey(Router, null=True, blank=True, on_delete=models.PROTECT,
                               related_name="floating_ips")
    status = models.CharField(max_length=16, default="DOWN")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.floating_ip_address
