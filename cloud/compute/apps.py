from django.apps import AppConfig


class ComputeConfig(AppConfig):
    name = "cloud.compute"
    label = "compute"
    default_auto_field = "django.db.models.BigAutoField"
