"""HTTP routes under /console/ (cloud/urls.py); the websocket routes are in routing.py."""

from django.urls import path

from . import views

app_name = "consoles"

urlpatterns = [
    path("", views.console_page, name="page"),
    path("status", views.console_status, name="status"),
    path("novnc/<path:path>", views.novnc_file, name="novnc"),
]
