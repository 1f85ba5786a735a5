"""Block Storage v3 paths (Cinder's), mounted at "volume": /volume/v3/{project_id}/…"""

from django.urls import path

from . import attachments, views
from . import more_views as more

P = "/v3/<str:project_id>"

urlpatterns = [
    path("", more.VolumeRoot.as_view()),
    path("/", more.VolumeRoot.as_view()),
    path("/v3", more.VolumeV3Root.as_view()),
    path("/v3/", more.VolumeV3Root.as_view()),
    path(f"{P}/volumes", views.Volumes.as_view()),
    path(f"{P}/volumes/detail", views.VolumesDetail.as_view()),
    path(f"{P}/volumes/summary", views.VolumeSummary.as_view()),
    path(f"{P}/volumes/<str:volume_id>", views.VolumeDetail.as_view()),
    path(f"{P}/volumes/<str:volume_id>/action", views.VolumeAction.as_view()),
    path(f"{P}/volumes/<str:volume_id>/metadata", views.VolumeMetadata.as_view()),
    path(f"{P}/volumes/<str:volume_id>/metadata/<str:key>", views.VolumeMetadataItem.as_view()),
    path(f"{P}/snapshots", views.Snapshots.as_view()),
    path(f"{P}/snapshots/detail", views.SnapshotsDetail.as_view()),
    path(f"{P}/snapshots/<str:snapshot_id>", views.SnapshotDetail.as_view()),
    path(f"{P}/snapshots/<str:snapshot_id>/action", views.SnapshotAction.as_view()),
    path(f"{P}/snapshots/<str:snapshot_id>/metadata", views.SnapshotMetadata.as_view()),
    path(f"{P}/snapshots/<str:snapshot_id>/metadata/<str:key>",
         views.SnapshotMetadataItem.as_view()),
    path(f"{P}/attachments", attachments.Attachments.as_view()),
    path(f"{P}/attachments/detail", attachments.AttachmentsDetail.as_view()),
    path(f"{P}/attachments/<str:attachment_id>", attachments.AttachmentDetail.as_view()),
    path(f"{P}/attachments/<str:attachment_id>/action", attachments.AttachmentAction.as_view()),
    path(f"{P}/types", more.Types.as_view()),
    path(f"{P}/types/default", more.DefaultType.as_view()),
    path(f"{P}/types/<str:type_id>", more.TypeDetail.as_view()),
    path(f"{P}/types/<str:type_id>/extra_specs", more.ExtraSpecs.as_view()),
    path(f"{P}/types/<str:type_id>/extra_specs/<str:key>", more.ExtraSpec.as_view()),
    path(f"{P}/types/<str:type_id>/os-volume-type-access", more.TypeAccess.as_view()),
    path(f"{P}/types/<str:type_id>/action", more.TypeAction.as_view()),
    path(f"{P}/os-quota-sets/<str:target>", more.QuotaSet.as_view()),
    path(f"{P}/os-quota-sets/<str:target>/defaults", more.QuotaDefaults.as_view()),
    path(f"{P}/limits", more.Limits.as_view()),
    path(f"{P}/os-availability-zone", more.AvailabilityZones.as_view()),
    path(f"{P}/os-services", more.Services.as_view()),
    path(f"{P}/os-services/<str:action>", more.ServiceAction.as_view()),
    path(f"{P}/extensions", more.Extensions.as_view()),
    path(f"{P}/messages", more.Messages.as_view()),
    path(f"{P}/messages/<str:message_id>", more.MessageDetail.as_view()),
    # A discovery GET of the catalog's URL itself (keystoneauth strips the id, others may not).
    path(f"{P}", more.VolumeV3Root.as_view()),
    path(f"{P}/", more.VolumeV3Root.as_view()),
]
