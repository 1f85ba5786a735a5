"""Keystone's subset: projects, users, groups, roles, role assignments (of users and of groups),
tokens (only their hashes), application credentials (only their secrets' hashes), EC2-style
credentials (their secrets encrypted), and the service catalog (regions, services, endpoints)."""

import uuid
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models


def hex_id() -> str:
    return uuid.uuid4().hex


class Project(models.Model):
    id = models.CharField(primary_key=True, max_length=64, default=hex_id, editable=False)
    name = models.CharField(max_length=64, unique=True)
    description = models.TextField(blank=True, default="")
    enabled = models.BooleanField(default=True)
    domain_id = models.CharField(max_length=64, default="default")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class UserManager(BaseUserManager):
    def create_user(self, name: str, password: str | None = None, **extra: Any) -> "User":
        user = self.model(name=name, **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, name: str, password: str | None = None, **extra: Any) -> "User":
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self.create_user(name, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A Keystone user; also the Django user, so the dashboard and admin log in with the same name."""

    id = models.CharField(primary_key=True, max_length=64, default=hex_id, editable=False)
    name = models.CharField(max_length=255, unique=True)
    email = models.EmailField(blank=True, default="")
    # Keystone keeps a user's description (an "extra" attribute there); clients set and show it.
    description = models.TextField(blank=True, default="")
    enabled = models.BooleanField(default=True)
    domain_id = models.CharField(max_length=64, default="default")
    default_project = models.ForeignKey(
        Project, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    is_staff = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    USERNAME_FIELD = "name"
    objects = UserManager()

    @property
    def is_active(self) -> bool:
        return self.enabled

    def __str__(self) -> str:
        return self.name


class Role(models.Model):
    id = models.CharField(primary_key=True, max_length=64, default=hex_id, editable=False)
    name = models.CharField(max_length=64, unique=True)
    description = models.TextField(blank=True, default="")

    def __str__(self) -> str:
        return self.name


class RoleAssignment(models.Model):
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="assignments")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="assignments")
    role = models.ForeignKey(Role, on_delete=models.CASCADE, related_name="assignments")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "project", "role"], name="uniq_assignment")
        ]

    def __str__(self) -> str:
        return f"{self.user} {self.role} on {self.project}"


class Group(models.Model):
    """A Keystone group: a role granted to it on a project is held by each of its users."""

    id = models.CharField(primary_key=True, max_length=64, default=hex_id, editable=False)
    name = models.CharField(max_length=64, unique=True)
    description = models.TextField(blank=True, default="")
    domain_id = models.CharField(max_length=64, default="default")
    # Not `groups`: Django's own User.groups (auth.Group) is another thing.
    users = models.ManyToManyField(User, blank=True, related_name="member_of")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class GroupRoleAssignment(models.Model):
    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="assignments")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="group_assignments")
    role = models.ForeignKey(Role, on_delete=models.CASCADE, related_name="group_assignments")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["group", "project", "role"], name="uniq_group_assignment")
        ]

    def __str__(self) -> str:
        return f"group {self.group} {self.role} on {self.project}"


class ApplicationCredential(models.Model):
    """A secret a user makes for automation: it logs in as the user, on one project, with some of
    the user's roles there. Only a hash of the secret is kept; the secret is shown once."""

    id = models.CharField(primary_key=True, max_length=64, default=hex_id, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="application_credentials")
    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="application_credentials"
    )
    name = models.CharField(max_length=255)
    description = models.TextField(blank=True, default="")
    secret_hash = models.CharField(max_length=255)
    roles = models.ManyToManyField(Role, related_name="application_credentials")
    # Keystone's rule: only an unrestricted one may make more application credentials or trusts.
    unrestricted = models.BooleanField(default=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "name"], name="uniq_app_credential_name")
        ]

    def __str__(self) -> str:
        return f"application credential {self.name} of {self.user_id}"


class Token(models.Model):
    """An issued token. Only the SHA-256 of the token is stored; the token itself is shown once."""

    token_hash = models.CharField(primary_key=True, max_length=64)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="tokens")
    project = models.ForeignKey(
        Project, null=True, blank=True, on_delete=models.CASCADE, related_name="tokens"
    )
    # A token got with an application credential carries its limits, and dies with it.
    application_credential = models.ForeignKey(
        ApplicationCredential, null=True, blank=True, on_delete=models.CASCADE,
        related_name="tokens",
    )
    methods = models.JSONField(default=list)
    audit_id = models.CharField(max_length=32)
    issued_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"token {self.audit_id} of {self.user_id}"


class Quota(models.Model):
    """A project's limit for one resource, where it differs from the default in settings."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="quotas")
    resource = models.CharField(max_length=64)
    hard_limit = models.IntegerField()  # -1 means unlimited

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "resource"], name="uniq_quota_resource")
        ]

    def __str__(self) -> str:
        return f"{self.project_id} {self.resource}={self.hard_limit}"


class UserQuota(models.Model):
    """A user's limit for one resource within a project (Nova's per-user quotas): at most the
    project's, and checked at boot besides the project's. The user is kept by id, as Nova keeps it
    (project_user_quotas): the rows go with the project, or when an admin resets them."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="user_quotas")
    user_id = models.CharField(max_length=64)
    resource = models.CharField(max_length=64)
    hard_limit = models.IntegerField()  # -1 means unlimited

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "user_id", "resource"],
                                    name="uniq_user_quota_resource")
        ]

    def __str__(self) -> str:
        return f"{self.project_id} {self.user_id} {self.resource}={self.hard_limit}"


class Credential(models.Model):
    """Keystone's /v3/credentials: a blob of a given type for a user (EC2 access and secret, for
    an EC2 API to check request signatures with). The blob holds the secret, so it is stored
    encrypted (cloud.identity.credentials) and never logged."""

    # For type ec2, Keystone's id: the SHA-256 of the access key, so lookups by access are exact.
    id = models.CharField(primary_key=True, max_length=64, default=hex_id, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="credentials")
    project = models.ForeignKey(
        Project, null=True, blank=True, on_delete=models.CASCADE, related_name="credentials"
    )
    type = models.CharField(max_length=255)
    encrypted_blob = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.type} credential {self.id} of {self.user_id}"


# --- the service catalog


class Region(models.Model):
    id = models.CharField(primary_key=True, max_length=255)
    description = models.TextField(blank=True, default="")
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )

    def __str__(self) -> str:
        return self.id


class Service(models.Model):
    """A catalog entry (Keystone's word; unrelated to Nova's os-services, compute.Service)."""

    id = models.CharField(primary_key=True, max_length=64, default=hex_id, editable=False)
    type = models.CharField(max_length=255)
    name = models.CharField(max_length=255, blank=True, default="")
    description = models.TextField(blank=True, default="")
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["type", "name", "id"]

    def __str__(self) -> str:
        return f"{self.type} ({self.name})"


INTERFACES = ["public", "internal", "admin"]


class Endpoint(models.Model):
    id = models.CharField(primary_key=True, max_length=64, default=hex_id, editable=False)
    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="endpoints")
    interface = models.CharField(max_length=8)
    region = models.ForeignKey(
        Region, null=True, blank=True, on_delete=models.PROTECT, related_name="endpoints"
    )
    # An absolute URL, or a path ("/compute/v2.1") that the catalog puts under the public URL
    # (KUMO_PUBLIC_URL, else the request's own origin), as bootstrap's endpoints are.
    url = models.CharField(max_length=1024)
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["service__type", "interface", "id"]

    def __str__(self) -> str:
        return f"{self.service} {self.interface} {self.url}"
