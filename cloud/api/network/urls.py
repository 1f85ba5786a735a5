"""Neutron v2.0 paths, mounted at "network" (no trailing slash), so every pattern starts with "/"."""

from django.urls import path

from . import more_views as more
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
    path(f"{V2}/security-groups", more.SecurityGroups.as_view()),
    path(f"{V2}/security-groups/<str:group_id>", more.SecurityGroupDetail.as_view()),
    path(f"{V2}/security-group-rules", more.SecurityGroupRules.as_view()),
    path(f"{V2}/security-group-rules/<str:rule_id>", more.SecurityGroupRuleDetail.as_view()),
    path(f"{V2}/routers", more.Routers.as_view()),
    path(f"{V2}/routers/<str:router_id>", more.RouterDetail.as_view()),
    path(f"{V2}/routers/<str:router_id>/add_router_interface",
         more.RouterAddInterface.as_view()),
    path(f"{V2}/routers/<str:router_id>/remove_router_interface",
         more.RouterRemoveInterface.as_view()),
    path(f"{V2}/floatingips", more.FloatingIps.as_view()),
    path(f"{V2}/floatingips/<str:floatingip_id>", more.FloatingIpDetail.as_view()),
    path(f"{V2}/quotas", more.Quotas.as_view()),
    path(f"{V2}/quotas/<str:project_id>", more.Quota.as_view()),
    path(f"{V2}/quotas/<str:project_id>/details", more.QuotaDetails.as_view()),
    path(f"{V2}/quotas/<str:project_id>/default", more.QuotaDefault.as_view()),
    path(f"{V2}/agents", more.Agents.as_view()),
    path(f"{V2}/agents/<str:agent_id>", more.AgentDetail.as_view()),
    path(f"{V2}/extensions", views.Extensions.as_view()),
    path(f"{V2}/extensions/<str:alias>", views.ExtensionDetail.as_view()),
]
