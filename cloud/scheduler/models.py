"""What the scheduler claimed: one allocation per instance, on one node."""

from django.db import models

from cloud.compute.models import ComputeNode, Instance


class Allocation(models.Model):
    # One claim per instance: a redelivered schedule task cannot claim twice.
    instance = models.OneToOneField(Instance, on_delete=models.CASCADE, related_name="allocation")
    node = models.ForeignKey(ComputeNode, on_delete=models.PROTECT, related_name="allocations")
    vcpus = models.PositiveIntegerField()
    memory_mb = models.PositiveIntegerField()
    disk_gb = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.instance_id} on {self.node}"
