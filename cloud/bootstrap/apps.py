from django.apps import AppConfig


class BootstrapConfig(AppConfig):
    """`manage.py bootstrap`: seeds a new cloud across every domain, so it sits above them all."""

    name = "cloud.bootstrap"
    label = "bootstrap"
    default_auto_field = "django.db.models.BigAutoField"
