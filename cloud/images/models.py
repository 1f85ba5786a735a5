"""Glance's image records. The bytes live on local disk (cloud.images.storage)."""

import uuid

from django.db import models

from cloud.identity.models import Project

QUEUED, SAVING, ACTIVE, KILLED, DEACTIVATED, DELETED = (
    "queued",
    "saving",
    "active",
    "killed",
    "deactivated",
    "deleted",
)
DISK_FORMATS = ["ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop"]
CONTAINER_FORMATS = ["ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed"]
VISIBILITIES = ["public", "private", "shared", "community"]


class Image(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=255, null=True, blank=True)
    status = models.CharField(max_length=16, default=QUEUED)
    disk_format = models.CharField(max_length=16, null=True, blank=True)
    container_format = models.CharField(max_length=16, null=True, blank=True)
    visibility = models.CharField(max_length=16, default="shared")
    size = models.BigIntegerField(null=True, blank=True)
    virtual_size = models.BigIntegerField(null=True, blank=True)
    checksum = models.CharField(max_length=32, null=True, blank=True)
    os_hash_algo = models.CharField(max_length=16, null=True, blank=True)
    os_hash_value = models.CharField(max_length=128, null=True, blank=True)
    min_disk = models.PositiveIntegerField(default=0)
    min_ram = models.PositiveIntegerField(default=0)
    protected = models.BooleanField(default=False)
    os_hidden = models.BooleanField(default=False)
    owner = models.ForeignKey(
        Project, null=True, blank=True, on_delete=models.SET_NULL, related_name="images"
    )
    tags = models.JSONField(default=list, blank=True)
    # Glance's "additional properties": any other key a client sets is stored and echoed back.
    properties = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"
