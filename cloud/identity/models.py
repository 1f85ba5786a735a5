"""Keystone's subset: projects, users, roles, role assignments and tokens (only their hashes)."""

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


class Token(models.Model):
    """An issued token. Only the SHA-256 of the token is stored; the token itself is shown once."""

    token_hash = models.CharField(primary_key=True, max_length=64)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="tokens")
    project = models.ForeignKey(
        Project, null=True, blank=True, on_delete=models.CASCADE, related_name="tokens"
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
