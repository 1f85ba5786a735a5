"""Neutron v2.0 paths, mounted at "network" (no trailing slash), so every pattern starts with "/"."""

from django.urls import path

from . import views

V2 = "/v2.0"

urlpatterns = [
    path("", views.NetworkRoot.as_view()),
    path("/", views.NetworkRoot.as_view()),
    path(V2, views.NetworkV2Root.as_view()),
    path(f"{V2}/", views.NetworkV2Root.as_view()),
    path(f"{V2}/networks", views.Networks.as_view()),
    path(f"{V2}/networks/<str:network_id>", views.NetworkDetail.as_view()),
    path(f"{V2}/subnets", views.Subnets.as_view()),
    path(f"{V2}/subnets/<str:subnet_id>", views.SubnetDetail.as_view()),
    path(f"{V2}/ports", views.Ports.as_view()),
    path(f"{V2}/ports/<str:port_id>", views.PortDetail.as_view()),
    path(f"{V2}/quotas/<str:project_id>", views.Quota.as_view()),
    path(f"{V2}/quotas/<str:project_id>/details", views.QuotaDetails.as_view()),
    # Network quotas are fixed, so the defaults are the quotas themselves.
    path(f"{V2}/quotas/<str:project_id>/default", views.QuotaDefault.as_view()),
    path(f"{V2}/floatingips", views.FloatingIps.as_view()),
    path(f"{V2}/floatingips/<str:floatingip_id>", views.FloatingIpDetail.as_view()),
    path(f"{V2}/security-groups", views.SecurityGroups.as_view()),
    path(f"{V2}/security-groups/<str:group_id>", views.SecurityGroupDetail.as_view()),
    path(f"{V2}/extensions", views.Extensions.as_view()),
    path(f"{V2}/extensions/<str:alias>", views.ExtensionDetail.as_view()),
]
