from django.contrib import admin

from .models import Image, ImageMember, ImageTask


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = ("name", "id", "status", "disk_format", "visibility", "size", "owner")
    list_filter = ("status", "disk_format", "visibility")
    search_fields = ("name", "id")


@admin.register(ImageMember)
class ImageMemberAdmin(admin.ModelAdmin):
    list_display = ("image", "project", "status", "updated_at")
    list_filter = ("status",)


@admin.register(ImageTask)
class ImageTaskAdmin(admin.ModelAdmin):
    list_display = ("id", "type", "status", "image", "owner", "created_at")
    list_filter = ("type", "status")
    readonly_fields = ("input", "result", "message", "request_id", "user_id")
