from django.apps import AppConfig


class IdentityConfig(AppConfig):
    name = "cloud.identity"
    label = "identity"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import token_invalidation

        token_invalidation.connect(self)
