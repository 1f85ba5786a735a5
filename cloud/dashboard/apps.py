from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "cloud.dashboard"
    label = "dashboard"

    def ready(self) -> None:
        # The dashboard hears about instance changes; nothing below it knows it is listening.
        from cloud import events

        from . import guest_charts, live

        events.INSTANCE_CHANGED.connect(live.on_instance_changed, dispatch_uid="dashboard.live")
        events.HOST_MOVES_CHANGED.connect(live.on_host_moves_changed,
                                          dispatch_uid="dashboard.live.moves")
        events.GUEST_STATS_RECORDED.connect(guest_charts.on_guest_stats_recorded,
                                            dispatch_uid="dashboard.guest_charts")
