"""Glance v2 paths, mounted at "image" (no trailing slash), so every pattern starts with "/"."""

from django.urls import path

from . import views

urlpatterns = [
    path("", views.ImageRoot.as_view()),
    path("/", views.ImageRoot.as_view()),
    path("/v2", views.ImageV2Root.as_view()),
    path("/v2/", views.ImageV2Root.as_view()),
    path("/v2/images", views.Images.as_view()),
    path("/v2/images/<str:image_id>", views.ImageDetail.as_view()),
    path("/v2/images/<str:image_id>/file", views.ImageFile.as_view()),
    path("/v2/images/<str:image_id>/actions/deactivate", views.ImageDeactivate.as_view()),
    path("/v2/images/<str:image_id>/actions/reactivate", views.ImageReactivate.as_view()),
    path("/v2/schemas/image", views.ImageSchema.as_view()),
    path("/v2/schemas/images", views.ImagesSchema.as_view()),
]
