from django.contrib import admin

from .models import (
    FloatingIp,
    Network,
    Port,
    Router,
    SecurityGroup,
    SecurityGroupRule,
    Subnet,
)


@admin.register(Network)
class NetworkAdmin(admin.ModelAdmin):
    list_display = ("name", "id", "project", "shared", "external", "network_type",
                    "segmentation_id")


@admin.register(Subnet)
class SubnetAdmin(admin.ModelAdmin):
    list_display = ("name", "cidr", "network", "gateway_ip")


@admin.register(Port)
class PortAdmin(admin.ModelAdmin):
    list_display = ("id", "network", "mac_address", "device_id", "device_owner", "status")
    search_fields = ("device_id", "mac_address")


@admin.register(SecurityGroup)
class SecurityGroupAdmin(admin.ModelAdmin):
    list_display = ("name", "id", "project")


@admin.register(SecurityGroupRule)
class SecurityGroupRuleAdmin(admin.ModelAdmin):
    list_display = ("id", "security_group", "direction", "ethertype", "protocol",
                    "port_range_min", "port_range_max", "remote_ip_prefix")


@admin.register(Router)
class RouterAdmin(admin.ModelAdmin):
    list_display = ("name", "id", "project", "external_network", "host")


@admin.register(FloatingIp)
class FloatingIpAdmin(admin.ModelAdmin):
    list_display = ("floating_ip_address", "fixed_ip_address", "port", "router", "status")
