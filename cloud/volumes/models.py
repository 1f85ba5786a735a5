"""Cinder's resources as Kumo stores them. A volume's bytes are a qcow2 file on one volume host,
which exports it over NBD; `connection` is how any compute host's qemu reaches it."""

import uuid

from django.db import models

from cloud.identity.models import Project

from . import statuses


class VolumeHost(models.Model):
    """A volume host (Cinder's volume service) as its last report described it."""

    name = models.CharField(max_length=64, unique=True)
    backend = models.CharField(max_length=32, default="nbd")
    availability_zone = models.CharField(max_length=255, default="nova")
    total_gb = models.PositiveIntegerField(default=0)
    free_gb = models.PositiveIntegerField(default=0)
    # Set by an admin (os-services disable); a disabled host takes no new volume.
    disabled = models.BooleanField(default=False)
    disabled_reason = models.CharField(max_length=255, blank=True, default="")
    last_seen = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class VolumeType(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=255, unique=True)
    description = models.TextField(blank=True, default="")
    is_public = models.BooleanField(default=True)
    extra_specs = models.JSONField(default=dict, blank=True)
    # The projects a private type is shared with (os-volume-type-access).
    projects = models.ManyToManyField(Project, blank=True, related_name="volume_types")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Volume(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="volumes")
    user_id = models.CharField(max_length=64, blank=True, default="")
    name = models.CharField(max_length=255, blank=True, default="")
    description = models.TextField(blank=True, default="")
    size = models.PositiveIntegerField()  # GiB
    # Cinder's status (statuses.py has the table of moves); attach_status follows attachments.
    status = models.CharField(max_length=32, default=statuses.CREATING, db_index=True)
    attach_status = models.CharField(max_length=16, default=statuses.DETACHED)
    # Why the last operation failed, in words (Cinder keeps these as user messages).
    status_reason = models.TextField(blank=True, default="")
    volume_type = models.ForeignKey(VolumeType, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="volumes")
    availability_zone = models.CharField(max_length=255, default="nova")
    host = models.ForeignKey(VolumeHost, null=True, blank=True, on_delete=models.PROTECT,
                             related_name="volumes")
    # {"driver_volume_type": "nbd", "host": IP, "port": N, "export": id}, from the host once created.
    connection = models.JSONField(default=dict, blank=True)
    bootable = models.BooleanField(default=False)
    multiattach = models.BooleanField(default=False)
    source_volid = models.UUIDField(null=True, blank=True)
    snapshot_id = models.UUIDField(null=True, blank=True)
    image_id = models.UUIDField(null=True, blank=True)  # the image it was created from
    # The source image's properties (Cinder's volume_image_metadata), which a boot from it uses.
    image_metadata = models.JSONField(default=dict, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    migration_status = models.CharField(max_length=32, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "id"]
        indexes = [models.Index(fields=["project", "status"], name="volume_project_status")]

    def __str__(self) -> str:
        return self.name or str(self.id)


class VolumeSnapshot(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # A volume with snapshots cannot be deleted (unless cascade): PROTECT says so to the database.
    volume = models.ForeignKey(Volume, on_delete=models.PROTECT, related_name="snapshots")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="volume_snapshots")
    user_id = models.CharField(max_length=64, blank=True, default="")
    name = models.CharField(max_length=255, blank=True, default="")
    description = models.TextField(blank=True, default="")
    size = models.PositiveIntegerField()  # GiB, the volume's when taken
    status = models.CharField(max_length=32, default=statuses.CREATING, db_index=True)
    status_reason = models.TextField(blank=True, default="")
    progress = models.CharField(max_length=8, default="0%")
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "id"]

    def __str__(self) -> str:
        return self.name or str(self.id)


class VolumeAttachment(models.Model):
    """One volume on one server (Cinder's attachment, the v3.27 API Nova uses). The server is kept
    by uuid: compute sits above this app and owns what the guest sees (its block device rows)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    volume = models.ForeignKey(Volume, on_delete=models.CASCADE, related_name="attachments")
    instance_uuid = models.UUIDField(null=True, blank=True, db_index=True)
    attached_host = models.CharField(max_length=255, blank=True, default="")
    mountpoint = models.CharField(max_length=255, blank=True, default="")  # /dev/vdb
    attach_mode = models.CharField(max_length=8, default="rw")
    # reserved -> attaching -> attached -> detaching (then the row goes), or error_attaching.
    status = models.CharField(max_length=32, default=statuses.ATTACH_RESERVED)
    connector = models.JSONField(default=dict, blank=True)
    attach_time = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.volume_id} on {self.instance_uuid}"
