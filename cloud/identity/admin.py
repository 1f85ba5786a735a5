from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.http import HttpRequest

from .models import (
    ApplicationCredential,
    Credential,
    Endpoint,
    Group,
    GroupRoleAssignment,
    Project,
    Quota,
    Region,
    Role,
    RoleAssignment,
    Service,
    Token,
    User,
    UserQuota,
)


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ("name", "id", "enabled", "created_at")
    search_fields = ("name", "id")


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ("name",)
    list_display = ("name", "id", "enabled", "is_staff", "default_project")
    list_filter = ("enabled", "is_staff")
    search_fields = ("name", "id", "email")
    fieldsets = (
        (None, {"fields": ("name", "password", "email", "description", "default_project")}),
        ("Access", {"fields": ("enabled", "is_staff", "is_superuser")}),
    )
    add_fieldsets = ((None, {"fields": ("name", "password1", "password2")}),)
    filter_horizontal = ()


@admin.register(Role)
class RoleAdmin(admin.ModelAdmin):
    list_display = ("name", "id", "description")


@admin.register(RoleAssignment)
class RoleAssignmentAdmin(admin.ModelAdmin):
    list_display = ("user", "role", "project")
    list_filter = ("role", "project")


@admin.register(Token)
class TokenAdmin(admin.ModelAdmin):
    # Only hashes are stored; the admin shows who and until when, never anything usable.
    list_display = ("audit_id", "user", "project", "issued_at", "expires_at")
    exclude = ("token_hash",)
    readonly_fields = ("user", "project", "methods", "audit_id", "issued_at", "expires_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(Quota)
class QuotaAdmin(admin.ModelAdmin):
    list_display = ("project", "resource", "hard_limit")
    list_filter = ("resource",)


@admin.register(UserQuota)
class UserQuotaAdmin(admin.ModelAdmin):
    list_display = ("project", "user_id", "resource", "hard_limit")
    list_filter = ("resource",)


@admin.register(Group)
class GroupAdmin(admin.ModelAdmin):
    list_display = ("name", "id", "description")
    search_fields = ("name", "id")
    filter_horizontal = ("users",)


@admin.register(GroupRoleAssignment)
class GroupRoleAssignmentAdmin(admin.ModelAdmin):
    list_display = ("group", "role", "project")
    list_filter = ("role", "project")


@admin.register(ApplicationCredential)
class ApplicationCredentialAdmin(admin.ModelAdmin):
    # The secret's hash is nothing an operator can use; it is not shown.
    list_display = ("name", "id", "user", "project", "unrestricted", "expires_at")
    exclude = ("secret_hash",)
    readonly_fields = ("user", "project")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(Credential)
class CredentialAdmin(admin.ModelAdmin):
    # The blob holds a secret: never shown here, and credentials are made through the API.
    list_display = ("id", "type", "user", "project", "created_at")
    list_filter = ("type",)
    exclude = ("encrypted_blob",)
    readonly_fields = ("user", "project", "type")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(Region)
class RegionAdmin(admin.ModelAdmin):
    list_display = ("id", "description", "parent")


@admin.register(Service)
class ServiceAdmin(admin.ModelAdmin):
    list_display = ("type", "name", "id", "enabled")


@admin.register(Endpoint)
class EndpointAdmin(admin.ModelAdmin):
    list_display = ("service", "interface", "region", "url", "enabled")
    list_filter = ("interface", "region")
