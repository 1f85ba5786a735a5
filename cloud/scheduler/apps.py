from django.apps import AppConfig


class SchedulerConfig(AppConfig):
    name = "cloud.scheduler"
    label = "scheduler"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # It carries out the operations that move a server to another host (operations.runs).
        from . import evacuations, moves  # noqa: F401
