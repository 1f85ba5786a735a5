from django.apps import AppConfig


class VolumesConfig(AppConfig):
    name = "cloud.volumes"
    label = "volumes"
    default_auto_field = "django.db.models.BigAutoField"
