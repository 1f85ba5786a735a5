"""Neutron's subset: networks, subnets and ports (addresses only; the data plane comes later)."""

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
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.name or self.id} on {self.network}"
