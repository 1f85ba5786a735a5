from django.contrib import admin

from .models import Network, Port, Subnet


@admin.register(Network)
class NetworkAdmin(admin.ModelAdmin):
    list_display = ("name", "id", "project", "shared", "external")


@admin.register(Subnet)
class SubnetAdmin(admin.ModelAdmin):
    list_display = ("name", "cidr", "network", "gateway_ip")


@admin.register(Port)
class PortAdmin(admin.ModelAdmin):
    list_display = ("id", "network", "mac_address", "device_id", "status")
    search_fields = ("device_id", "mac_address")
