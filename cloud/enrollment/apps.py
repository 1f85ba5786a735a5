from django.apps import AppConfig
from django.db.models.signals import post_save, pre_save


class EnrollmentConfig(AppConfig):
    name = "cloud.enrollment"
    label = "enrollment"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import uncredentialed
        from .models import HostCredential

        # Every write of a host's credential (a join; the admin) ends the conductors' memos of
        # hosts without one (uncredentialed.py): before the write, and again after its commit.
        def before(sender: type, **kwargs: object) -> None:
            uncredentialed.before_change()

        def after(sender: type, **kwargs: object) -> None:
            uncredentialed.after_change()

        pre_save.connect(before, sender=HostCredential, weak=False,
                         dispatch_uid="enrollment.credential-before")
        post_save.connect(after, sender=HostCredential, weak=False,
                          dispatch_uid="enrollment.credential-after")
