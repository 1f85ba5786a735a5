"""Rows the API edge keeps of its own.

`Ec2Tag`: EC2 tags of the Neutron resources EC2 names (security groups, Elastic IPs' floating
IPs, VPCs' networks, subnets). Neutron's resources here carry no tags of their own, so the pairs
live beside them; each row points at its resource with a cascading key, so deleting the resource
through Neutron's service deletes its tags. Instances, volumes, snapshots and images keep their
tags in their own OpenStack metadata instead (cloud/api/ec2/tags.py)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from cloud.network.models import FloatingIp, Network, SecurityGroup, Subnet


class Ec2Tag(models.Model):
    security_group = models.ForeignKey(SecurityGroup, null=True, blank=True,
                                       on_delete=models.CASCADE, related_name="+")
    floating_ip = models.ForeignKey(FloatingIp, null=True, blank=True,
                                    on_delete=models.CASCADE, related_name="+")
    network = models.ForeignKey(Network, null=True, blank=True,
                                on_delete=models.CASCADE, related_name="+")
    subnet = models.ForeignKey(Subnet, null=True, blank=True,
                               on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=128)
    value = models.CharField(max_length=256, blank=True, default="")

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                name="ec2tag_one_resource",
                condition=(
                    Q(security_group__isnull=False, floating_ip=None, network=None, subnet=None)
                    | Q(security_group=None, floating_ip__isnull=False, network=None, subnet=None)
                    | Q(security_group=None, floating_ip=None, network__isnull=False, subnet=None)
                    | Q(security_group=None, floating_ip=None, network=None, subnet__isnull=False)
                ),
            ),
            *[models.UniqueConstraint(fields=[field, "key"], name=f"ec2tag_{field}_key")
              for field in ("security_group", "floating_ip", "network", "subnet")],
        ]
