from django.apps import AppConfig


class ConductorConfig(AppConfig):
    name = "cloud.conductor"
    label = "conductor"
    default_auto_field = "django.db.models.BigAutoField"
