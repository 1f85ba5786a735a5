"""Compute routes. Each feature module keeps its own `urlpatterns`; this file only joins them."""

from django.urls import include, path

from . import (
    aggregates,
    availability_zones,
    external_events,
    flavor_extra_specs,
    flavors,
    host_drains,
    host_failures,
    host_tokens,
    hosts,
    image_metadata,
    images,
    instance_actions,
    interfaces,
    keypairs,
    legacy_hosts,
    limits,
    migrations,
    nova_network,
    placement_check,
    quotas,
    remote_consoles,
    retired,
    security_groups,
    server_actions,
    server_diagnostics,
    server_groups,
    server_meta,
    server_password,
    server_shares,
    server_tags,
    server_topology,
    servers,
    usage,
    usage_audit,
    versions,
    volume_attachments,
    volume_proxies,
    volumes_boot,
)

V = "/v2.1"

urlpatterns = [
    path("", versions.ComputeRoot.as_view()),
    path("/", versions.ComputeRoot.as_view()),
    path("/v2", versions.ComputeV20.as_view()),
    path("/v2/", versions.ComputeV20.as_view()),
    path(V, versions.ComputeV21.as_view()),
    path(V + "/", versions.ComputeV21.as_view()),
    path(V + "/servers", servers.ServerList.as_view()),
    path(V + "/servers/detail", servers.ServerDetailList.as_view()),
    path(V + "/servers/<str:server_id>", servers.ServerItem.as_view()),
    path(V + "/flavors", flavors.FlavorList.as_view()),
    path(V + "/flavors/detail", flavors.FlavorDetailList.as_view()),
    path(V + "/flavors/<str:flavor_id>", flavors.FlavorItem.as_view()),
]

# Feature modules list their paths relative to /compute/v2.1 (e.g. "/os-keypairs").
for _feature in (
    flavor_extra_specs,
    flavors,
    hosts,
    images,
    keypairs, limits, quotas, server_groups, availability_zones, aggregates, server_meta,
    instance_actions, server_actions, remote_consoles, migrations, host_drains, host_failures,
    server_tags,
    interfaces, security_groups, usage, external_events, server_topology, server_diagnostics,
    server_password, server_shares, retired, nova_network, legacy_hosts, usage_audit,
    volumes_boot, volume_attachments, volume_proxies, image_metadata,
    host_tokens,
    placement_check,
):
    urlpatterns.append(path(V, include(_feature.urlpatterns)))
