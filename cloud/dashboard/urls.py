"""The dashboard's pages. Admin pages live under /manage/ (/admin/ is Django's own admin)."""

from django.contrib.auth import views as auth_views
from django.urls import path

from . import (
    admin_flavors,
    admin_identity,
    admin_pages,
    bulk,
    images,
    instances,
    keypairs,
    launch,
    overview,
    server_groups,
)

app_name = "dashboard"

_instance = "instances/<str:instance_id>/"

urlpatterns = [
    path("", overview.overview, name="overview"),
    path("login/", auth_views.LoginView.as_view(template_name="dashboard/login.html"),
         name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("project/", overview.switch, name="switch-project"),
    # instances
    path("instances/", instances.instance_list, name="instances"),
    path("instances/launch/", launch.launch, name="launch"),
    path("instances/launch/check", launch.launch_check, name="launch-check"),
    path("instances/bulk", bulk.bulk_action, name="instances-bulk"),
    path(_instance, instances.instance_detail, name="instance"),
    path(_instance + "summary", instances.instance_summary, name="instance-summary"),
    path(_instance + "row", instances.instance_row, name="instance-row"),
    path(_instance + "log/", instances.instance_log, name="instance-log"),
    path(_instance + "log/output", instances.instance_log_output, name="instance-log-output"),
    path(_instance + "actions/", instances.instance_history, name="instance-history"),
    path(_instance + "console/", instances.instance_console, name="instance-console"),
    path(_instance + "do/<str:name>", instances.instance_action, name="instance-action"),
    path("console-frame/", instances.console_frame, name="console-frame"),
    # images
    path("images/", images.image_list, name="images"),
    path("images/create", images.image_create, name="image-create"),
    path("images/<str:image_id>/", images.image_detail, name="image"),
    path("images/<str:image_id>/data", images.image_data, name="image-data"),
    path("images/<str:image_id>/edit", images.image_edit, name="image-edit"),
    path("images/<str:image_id>/delete", images.image_delete, name="image-delete"),
    # key pairs and server groups
    path("keypairs/", keypairs.keypair_list, name="keypairs"),
    path("keypairs/create", keypairs.keypair_create, name="keypair-create"),
    path("keypairs/import", keypairs.keypair_import, name="keypair-import"),
    path("keypairs/<str:name>/", keypairs.keypair_detail, name="keypair"),
    path("keypairs/<str:name>/delete", keypairs.keypair_delete, name="keypair-delete"),
    path("server-groups/", server_groups.group_list, name="server-groups"),
    path("server-groups/create", server_groups.group_create, name="server-group-create"),
    path("server-groups/<str:group_id>/delete", server_groups.group_delete,
         name="server-group-delete"),
    # operators
    path("manage/", admin_pages.admin_index, name="manage"),
    path("manage/hypervisors/", admin_pages.hypervisor_list, name="hypervisors"),
    path("manage/services/", admin_pages.service_list, name="services"),
    path("manage/services/<str:service_id>/", admin_pages.service_edit, name="service"),
    path("manage/flavors/", admin_flavors.flavor_list, name="flavors"),
    path("manage/flavors/<str:flavor_id>/edit", admin_flavors.flavor_edit, name="flavor-edit"),
    path("manage/flavors/<str:flavor_id>/delete", admin_flavors.flavor_delete,
         name="flavor-delete"),
    path("manage/aggregates/", admin_pages.aggregate_list, name="aggregates"),
    path("manage/aggregates/<str:aggregate_id>/hosts", admin_pages.aggregate_add_host,
         name="aggregate-add-host"),
    path("manage/aggregates/<str:aggregate_id>/hosts/<str:host>/remove",
         admin_pages.aggregate_remove_host, name="aggregate-remove-host"),
    path("manage/aggregates/<str:aggregate_id>/delete", admin_pages.aggregate_delete,
         name="aggregate-delete"),
    path("manage/instances/", admin_pages.all_instances, name="all-instances"),
    path("manage/projects/", admin_identity.project_list, name="projects"),
    path("manage/projects/<str:project_id>/toggle", admin_identity.project_toggle,
         name="project-toggle"),
    path("manage/projects/<str:project_id>/delete", admin_identity.project_delete,
         name="project-delete"),
    path("manage/projects/<str:project_id>/quotas", admin_identity.project_quotas,
         name="project-quotas"),
    path("manage/projects/<str:project_id>/quotas/reset", admin_identity.project_quotas_reset,
         name="project-quotas-reset"),
    path("manage/users/", admin_identity.user_list, name="users"),
    path("manage/users/<str:user_id>/password", admin_identity.user_password,
         name="user-password"),
    path("manage/users/<str:user_id>/delete", admin_identity.user_delete, name="user-delete"),
    path("manage/users/<str:user_id>/toggle", admin_identity.user_toggle, name="user-toggle"),
    path("manage/roles/grant", admin_identity.role_grant, name="role-grant"),
    path("manage/roles/<str:project_id>/<str:user_id>/<str:role_id>/revoke",
         admin_identity.role_revoke, name="role-revoke"),
]
