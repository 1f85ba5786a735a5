from django.apps import AppConfig


class OutboxConfig(AppConfig):
    """The transactional outbox under cloud/rpc.py: part of the shared kernel."""

    name = "cloud.outbox"
    label = "outbox"
    default_auto_field = "django.db.models.BigAutoField"
