from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "cloud.dashboard"
    label = "dashboard"
