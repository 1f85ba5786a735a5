from django.contrib import admin

from .models import Allocation


@admin.register(Allocation)
class AllocationAdmin(admin.ModelAdmin):
    list_display = ("instance", "node", "vcpus", "memory_mb", "disk_gb", "created_at")
    list_filter = ("node",)
