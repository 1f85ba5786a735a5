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
# Glance's interoperable import: staged data waits in `uploading`; `importing` while it moves in.
UPLOADING, IMPORTING = "uploading", "importing"
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


# A member's answer to an image shared with its project.
PENDING, ACCEPTED, REJECTED = "pending", "accepted", "rejected"
MEMBER_STATUSES = [PENDING, ACCEPTED, REJECTED]


class ImageMember(models.Model):
    """A project an image of visibility `shared` is shared with, and whether it accepted.

    The member sees the image by id whatever its answer, and in its image list once accepted."""

    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="members")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="shared_images")
    status = models.CharField(max_length=16, default=PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["image", "project"], name="uniq_image_member")
        ]

    def __str__(self) -> str:
        return f"{self.project_id} {self.status} on {self.image_id}"


class ImageTask(models.Model):
    """Glance's record of an import (`api_image_import`, or an `import` task of /v2/tasks): what
    was asked, by whom and in which request, and how it ended."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    type = models.CharField(max_length=32)
    status = models.CharField(max_length=16, default="pending")
    image = models.ForeignKey(
        Image, null=True, blank=True, on_delete=models.SET_NULL, related_name="tasks"
    )
    owner = models.ForeignKey(
        Project, null=True, blank=True, on_delete=models.CASCADE, related_name="image_tasks"
    )
    user_id = models.CharField(max_length=64, default="")
    request_id = models.CharField(max_length=64, default="")
    input = models.JSONField(default=dict, blank=True)
    result = models.JSONField(null=True, blank=True)
    message = models.TextField(default="", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.type} {self.status} ({self.id})"
