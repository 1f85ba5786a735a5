from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("console/", include("consoles.urls")),
    path("", include("cloud.api.urls")),
    path("", include("cloud.dashboard.urls")),
]
