from django.contrib import admin

from .models import HostCredential, JoinToken


@admin.register(JoinToken)
class JoinTokenAdmin(admin.ModelAdmin):
    list_display = ("host", "issued_by", "created_at", "expires_at", "used_at")
    search_fields = ("host",)
    exclude = ("token_hash",)


@admin.register(HostCredential)
class HostCredentialAdmin(admin.ModelAdmin):
    list_display = ("host", "broker", "broker_user", "joined_at")
    search_fields = ("host", "broker_user")
    exclude = ("secret_salt",)
