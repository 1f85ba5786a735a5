from django.apps import AppConfig


class ComputeConfig(AppConfig):
    name = "cloud.compute"
    label = "compute"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from cloud import metrics
        from cloud.identity import signals

        # The modules whose functions carry operations out register them (operations.runs).
        from . import (  # noqa: F401
            backups,
            deferred_delete,
            gauges,
            guest_metrics,
            guest_operations,
            locks,
            network_plane,
            rescue,
            server_interfaces,
            server_volumes,
            servers,
            shelving,
        )

        # Identity asks before deleting a project or user; compute answers for its servers.
        signals.PROJECT_DELETING.connect(servers.before_project_deleted, dispatch_uid="compute")
        signals.USER_DELETING.connect(servers.before_user_deleted, dispatch_uid="compute")
        # The network domain announces data-plane changes; compute knows which hosts to tell.
        network_plane.connect()
        # /metrics reads instances, hosts and queue depths when scraped (docs/observability.md).
        metrics.register_collector("compute", gauges.collect_state)
        metrics.register_collector("queues", gauges.collect_queues)
        metrics.register_collector("guests", guest_metrics.collect)
