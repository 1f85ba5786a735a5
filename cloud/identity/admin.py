from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.http import HttpRequest

from .models import Project, Quota, Role, RoleAssignment, Token, User


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
        (None, {"fields": ("name", "password", "email", "default_project")}),
        ("Access", {"fields": ("enabled", "is_staff", "is_superuser")}),
    )
    add_fieldsets = ((None, {"fields": ("name", "password1", "password2")}),)
    filter_horizontal = ()


@admin.register(Role)
class RoleAdmin(admin.ModelAdmin):
    list_display = ("name", "id")


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
