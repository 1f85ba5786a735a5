"""Glance v2 paths, mounted at "image" (no trailing slash), so every pattern starts with "/"."""

from django.urls import path

from . import imports, sharing, views

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
    path("/v2/images/<str:image_id>/members", sharing.ImageMembers.as_view()),
    path("/v2/images/<str:image_id>/members/<str:member_id>", sharing.ImageMemberDetail.as_view()),
    path("/v2/images/<str:image_id>/tags/<str:tag>", sharing.ImageTag.as_view()),
    path("/v2/schemas/member", sharing.MemberSchema.as_view()),
    path("/v2/schemas/members", sharing.MembersSchema.as_view()),
    path("/v2/info/import", imports.ImportInfo.as_view()),
    path("/v2/images/<str:image_id>/stage", imports.ImageStage.as_view()),
    path("/v2/images/<str:image_id>/import", imports.ImageImport.as_view()),
    path("/v2/images/<str:image_id>/tasks", imports.ImageTasks.as_view()),
    path("/v2/tasks", imports.Tasks.as_view()),
    path("/v2/tasks/<str:task_id>", imports.TaskDetail.as_view()),
]
