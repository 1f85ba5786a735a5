from django.contrib import admin

from .models import Image


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = ("name", "id", "status", "disk_format", "visibility", "size", "owner")
    list_filter = ("status", "disk_format", "visibility")
    search_fields = ("name", "id")
